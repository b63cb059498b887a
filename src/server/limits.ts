/**
 * Query shape limits, checked during validation before anything runs: selection depth and the
 * number of aliases (the usual amplification tricks). `first` is capped per connection elsewhere.
 */
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';

export const MAX_DEPTH = 20;
export const MAX_ALIASES = 50;

export function depthLimit(max = MAX_DEPTH) {
  return (ctx: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of ctx.getDocument().definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const depth = (set: SelectionSetNode | undefined, seen: Set<string>): number => {
      if (!set) return 0;
      let most = 0;
      for (const s of set.selections) {
        if (s.kind === Kind.FIELD) most = Math.max(most, s.selectionSet ? 1 + depth(s.selectionSet, seen) : 1);
        else if (s.kind === Kind.INLINE_FRAGMENT) most = Math.max(most, depth(s.selectionSet, seen));
        else if (!seen.has(s.name.value)) most = Math.max(most, depth(fragments.get(s.name.value)?.selectionSet, new Set([...seen, s.name.value])));
      }
      return most;
    };
    return {
      OperationDefinition(op) {
        const d = depth(op.selectionSet, new Set());
        if (d > max) ctx.reportError(new GraphQLError(`query is ${d} levels deep; the limit is ${max}`, { nodes: [op] }));
      },
    };
  };
}

export function aliasLimit(max = MAX_ALIASES) {
  return (ctx: ValidationContext): ASTVisitor => {
    let n = 0;
    return {
      Field(f) {
        if (f.alias && ++n === max + 1) ctx.reportError(new GraphQLError(`more than ${max} aliases in one document`, { nodes: [f] }));
      },
    };
  };
}
