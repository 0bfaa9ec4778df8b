import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { transformer } from '@openfga/syntax-transformer';

const root = new URL('../../../../infra/openfga/', import.meta.url);

describe('infra/openfga model', () => {
  it('model.json is the exact JSON form of model.fga (the CLI writes the JSON)', () => {
    const fromDsl = transformer.transformDSLToJSONObject(readFileSync(new URL('model.fga', root), 'utf8'));
    const checkedIn = JSON.parse(readFileSync(new URL('model.json', root), 'utf8')) as unknown;
    expect(checkedIn).toEqual(JSON.parse(JSON.stringify(fromDsl)));
  });

  it('is the seed model: session owner is [user], viewer is [user] or owner', () => {
    const model = JSON.parse(readFileSync(new URL('model.json', root), 'utf8')) as { type_definitions: { type: string; relations?: Record<string, unknown> }[] };
    const session = model.type_definitions.find((t) => t.type === 'session');
    expect(model.type_definitions.map((t) => t.type)).toEqual(['user', 'session']);
    expect(session?.relations?.['owner']).toEqual({ this: {} });
    expect(session?.relations?.['viewer']).toEqual({ union: { child: [{ this: {} }, { computedUserset: { relation: 'owner' } }] } });
  });
});
