/**
 * A small validator of JSON values against Swagger 2.0 / OpenAPI 3 schemas (the subset vendor
 * specs use: $ref, properties, items, type, enum, allOf, nullable). It reports every property the
 * spec does not define, so a sandbox cannot drift into a private dialect.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export type Spec = { definitions?: Record<string, SchemaNode>; components?: { schemas?: Record<string, SchemaNode> }; paths: Record<string, unknown> };
export interface SchemaNode {
  $ref?: string;
  type?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  enum?: unknown[];
  allOf?: SchemaNode[];
  additionalProperties?: boolean | SchemaNode;
  'x-nullable'?: boolean;
  nullable?: boolean;
  required?: string[];
}

export function loadSpec(path: string): Spec {
  return parse(readFileSync(path, 'utf8')) as Spec;
}

function resolve(spec: Spec, node: SchemaNode): SchemaNode {
  if (!node.$ref) return node;
  const name = node.$ref.split('/').pop()!;
  const target = spec.definitions?.[name] ?? spec.components?.schemas?.[name];
  if (!target) throw new Error(`unresolved ${node.$ref}`);
  return resolve(spec, target);
}

/** Flattens allOf into one object schema. */
function flatten(spec: Spec, node: SchemaNode): SchemaNode {
  const n = resolve(spec, node);
  if (!n.allOf) return n;
  const parts = n.allOf.map((p) => flatten(spec, p));
  return {
    type: 'object',
    properties: Object.assign({}, ...parts.map((p) => p.properties ?? {}), n.properties ?? {}),
    required: parts.flatMap((p) => p.required ?? []),
  };
}

export function check(spec: Spec, schema: SchemaNode, value: unknown, path = '$', problems: string[] = []): string[] {
  const s = flatten(spec, schema);
  if (value === null || value === undefined) {
    if (value === null && !(s['x-nullable'] || s.nullable)) problems.push(`${path}: null where the spec does not allow it`);
    return problems;
  }
  if (s.enum && !s.enum.includes(value)) problems.push(`${path}: ${JSON.stringify(value)} not in enum`);
  const t = s.type ?? (s.properties ? 'object' : undefined);
  if (t === 'string' && typeof value !== 'string') problems.push(`${path}: expected string`);
  if ((t === 'number' || t === 'integer') && typeof value !== 'number') problems.push(`${path}: expected ${t}`);
  if (t === 'boolean' && typeof value !== 'boolean') problems.push(`${path}: expected boolean`);
  if (t === 'array') {
    if (!Array.isArray(value)) problems.push(`${path}: expected array`);
    else if (s.items) value.forEach((v, i) => check(spec, s.items!, v, `${path}[${i}]`, problems));
  }
  if (t === 'object') {
    if (typeof value !== 'object' || Array.isArray(value)) problems.push(`${path}: expected object`);
    else {
      for (const r of s.required ?? []) if (!(r in (value as object))) problems.push(`${path}.${r}: required but missing`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const p = s.properties?.[k];
        if (p) check(spec, p, v, `${path}.${k}`, problems);
        else if (typeof s.additionalProperties === 'object') check(spec, s.additionalProperties, v, `${path}.${k}`, problems);
        else if (!s.additionalProperties && s.properties) problems.push(`${path}.${k}: not defined by the spec`);
      }
    }
  }
  return problems;
}

export function ref(name: string): SchemaNode {
  return { $ref: `#/definitions/${name}` };
}
