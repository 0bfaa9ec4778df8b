import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { InvalidInputError } from '@soma/contracts';

/**
 * Decode an untrusted payload into a validated DTO: unknown properties are refused, nested DTOs
 * validated. Throws InvalidInputError (INVALID_ARGUMENT / 400) listing the violations, never values.
 */
export function decodeInput<T extends object>(dto: new () => T, payload: unknown): T {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new InvalidInputError(['request body must be an object']);
  }
  const instance = plainToInstance(dto, payload);
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, validationError: { target: false, value: false } });
  if (errors.length) {
    const flatten = (list: typeof errors, prefix = ''): string[] =>
      list.flatMap((e) => [
        ...Object.values(e.constraints ?? {}).map((m) => `${prefix}${m}`),
        ...flatten(e.children ?? [], `${prefix}${e.property}.`),
      ]);
    throw new InvalidInputError(flatten(errors));
  }
  return instance;
}
