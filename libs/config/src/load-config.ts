import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import { getMetadataStorage, validate, type ValidationError } from 'class-validator';
import { ConfigError } from './config.errors.js';
import { SecretResolver, type Env } from './secret-resolver.js';
import { weakSecretReason } from './secret-strength.js';

interface SecretOptions {
  /** Minimum length in bytes; shorter values stop start-up. 0 disables the strength check. */
  minBytes?: number;
  /** When false, an absent value is acceptable (the feature using it is off). */
  required?: boolean;
}

const SECRET_FIELDS = Symbol('soma:config:secret-fields');

/**
 * Marks a config property as secret-bearing: it may come from `X_FILE` or a `vault://` reference,
 * is checked for strength, and never appears in errors or logs.
 */
export function Secret(options: SecretOptions = {}): PropertyDecorator {
  return (target, property) => {
    // A copy: getMetadata walks the prototype chain, and adding to an inherited map would give every
    // sibling subclass of the same base this class's secrets.
    const fields = new Map<string, SecretOptions>(Reflect.getMetadata(SECRET_FIELDS, target) ?? []);
    fields.set(String(property), { minBytes: 32, required: true, ...options });
    Reflect.defineMetadata(SECRET_FIELDS, fields, target);
  };
}

/** Environment booleans: only the strings `true` and `false` (case-insensitive) are accepted. */
export function EnvBoolean(): PropertyDecorator {
  // Read the raw source: implicit conversion would already have turned "false" into true.
  return Transform(({ obj, key, value: converted }) => {
    const value: unknown = (obj as Record<string, unknown>)[key];
    if (value === undefined) return converted;
    if (typeof value === 'boolean') return value;
    if (typeof value !== 'string') return value;
    const v = value.trim().toLowerCase();
    return v === 'true' ? true : v === 'false' ? false : value;
  });
}

/** Comma-separated environment lists, trimmed, empty entries dropped. */
export function EnvList(): PropertyDecorator {
  return Transform(({ obj, key, value: converted }) => {
    const value: unknown = (obj as Record<string, unknown>)[key];
    if (value === undefined) return converted;
    return typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
  });
}

export function secretFieldsOf(cls: new () => object): Map<string, SecretOptions> {
  return Reflect.getMetadata(SECRET_FIELDS, cls.prototype) ?? new Map();
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => {
    const name = `${prefix}${e.property}`;
    const own = Object.values(e.constraints ?? {}).map((m) => (m.startsWith(e.property) ? `${prefix}${m}` : `${name}: ${m}`));
    return [...own, ...flatten(e.children ?? [], `${name}.`)];
  });
}

/**
 * Load and validate a config class whose property names are the environment variable names.
 * Secret properties are resolved (`X_FILE`, `vault://`) and strength-checked. All problems are
 * collected and reported at once; no value ever appears in the message.
 */
export async function loadConfig<T extends object>(cls: new () => T, env: Env = process.env): Promise<Readonly<T>> {
  const problems: string[] = [];
  const resolver = new SecretResolver(env);
  const secrets = secretFieldsOf(cls);
  const raw: Record<string, unknown> = {};
  const defaults = new cls() as Record<string, unknown>;

  // Every variable the class declares: those with a default, secrets, and optional ones declared without a
  // default (`X?: string` is not an own property of an instance, but it carries validation decorators).
  const declared = getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName);
  for (const key of new Set([...Object.keys(defaults), ...declared, ...secrets.keys()])) {
    if (secrets.has(key)) continue;
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const [key, options] of secrets) {
    try {
      const value = await resolver.resolve(key);
      if (value === undefined) {
        if (options.required) problems.push(`${key} is required (set ${key} or ${key}_FILE)`);
        continue;
      }
      const weak = options.minBytes ? weakSecretReason(value, options.minBytes) : null;
      if (weak) problems.push(`${key} is too weak: it ${weak}`);
      raw[key] = value;
    } catch (e) {
      problems.push((e as Error).message);
    }
  }

  const instance = plainToInstance(cls, raw, { enableImplicitConversion: true, exposeDefaultValues: true });
  const errors = await validate(instance, { forbidUnknownValues: false, validationError: { value: false, target: false } });
  // A secret already reported (missing, weak, unreadable) is not reported twice by the validators.
  const reported = new Set(problems.map((p) => p.split(/[ :]/, 1)[0]));
  problems.push(...flatten(errors).filter((p) => !reported.has(p.split(/[ :]/, 1)[0])));
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(instance);
}

/** A copy safe to log: secret properties are replaced by whether they are set. */
export function describeConfig<T extends object>(cls: new () => T, config: T): Record<string, unknown> {
  const secrets = secretFieldsOf(cls);
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, secrets.has(k) ? (v ? '[set]' : '[unset]') : v]),
  );
}
