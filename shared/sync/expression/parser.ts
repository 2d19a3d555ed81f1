/**
 * Recursive-descent parser for Entra's expression syntax:
 *
 *   expression := operand [ ("=" | "<>" | "<" | "<=" | ">" | ">=") operand ]
 *   operand    := name "(" [ argument { "," argument } ] ")" | "[" attribute "]" | "string" | number | True | False
 *   argument   := expression | (nothing: an empty position)
 *
 * Every problem the parser can know about is reported here rather than at the first cycle:
 * unknown functions and attributes, argument counts, empty required positions, literal arguments
 * of the wrong kind (a bad regex, "abc" where a number goes, an unknown culture).
 */
import { canonicalAttribute, SOURCE_ATTRIBUTES } from '../attributes';
import type { CallNode, Node } from './ast';
import { ExpressionError, type ExpressionErrorCode } from './errors';
import { checkLiteral, lookupFunction, SUPPORTED_FUNCTIONS, UNSUPPORTED_ENTRA_FUNCTIONS, type ParamSpec } from './functions';
import { type Token, tokenize } from './lexer';
import type { ComparisonOperator } from './values';

/** Deeper nesting than any hand-written mapping needs; the cap keeps recursion bounded. */
export const MAX_NESTING_DEPTH = 100;

export interface ParseResult {
  ast: Node;
  /** Canonical names of the attributes referenced, in order of first use. */
  attributes: string[];
}

export function parse(source: string): ParseResult {
  const lexer = tokenize(source);
  let lookahead: Token | undefined;
  let depth = 0;
  const attributes: string[] = [];

  const peek = (): Token => {
    // The lexer ends with an eof token; past it, keep answering eof.
    lookahead ??= lexer.next().value ?? { kind: 'eof', text: '', pos: source.length };
    return lookahead;
  };
  const next = (): Token => {
    const token = peek();
    if (token.kind === 'invalid') throw new ExpressionError('EXPRESSION_PARSE', token.text, token.pos, source);
    lookahead = undefined;
    return token;
  };
  const fail = (code: ExpressionErrorCode, detail: string, pos: number): never => {
    throw new ExpressionError(code, detail, pos, source);
  };
  const describeToken = (token: Token): string =>
    token.kind === 'eof' ? 'the end of the expression' : token.kind === 'string' ? `"${token.text}"` : token.kind === 'attribute' ? `[${token.text}]` : `"${token.text}"`;

  function parseExpression(): Node {
    const left = parseOperand();
    const op = peek();
    if (op.kind !== 'op') return left;
    next();
    const right = parseOperand();
    const after = peek();
    if (after.kind === 'op') fail('EXPRESSION_PARSE', `Comparisons cannot be chained: "${after.text}" follows a comparison`, after.pos);
    return { kind: 'compare', op: op.text as ComparisonOperator, left, right, pos: op.pos };
  }

  function parseOperand(): Node {
    const token = next();
    switch (token.kind) {
      case 'string':
        return { kind: 'string', value: token.text, pos: token.pos };
      case 'number':
        return { kind: 'number', value: token.number!, pos: token.pos };
      case 'attribute': {
        const name = canonicalAttribute(token.text);
        if (!name) {
          const hint = closest(token.text, SOURCE_ATTRIBUTES.map((a) => a.name));
          fail('EXPRESSION_UNKNOWN_ATTRIBUTE', `Unknown attribute [${token.text}]${hint ? `; did you mean [${hint}]?` : ''}`, token.pos);
        }
        if (!attributes.includes(name!)) attributes.push(name!);
        return { kind: 'attribute', name: name!, written: token.text, pos: token.pos };
      }
      case 'ident': {
        if (peek().kind === 'lparen') return parseCall(token);
        const lower = token.text.toLowerCase();
        if (lower === 'true' || lower === 'false') return { kind: 'boolean', value: lower === 'true', pos: token.pos };
        if (isLogicalWord(token)) fail('EXPRESSION_PARSE', noLogicalOperators(token), token.pos);
        if (lookupFunction(token.text)) fail('EXPRESSION_PARSE', `Expected "(" after the function name ${token.text}`, peek().pos);
        return fail('EXPRESSION_PARSE', `Unexpected word "${token.text}": attributes go in square brackets ([${token.text}]) and text in double quotes ("${token.text}")`, token.pos);
      }
      default:
        return fail('EXPRESSION_PARSE', `Expected a function call, an [attribute], "text" or a number, found ${describeToken(token)}`, token.pos);
    }
  }

  function parseCall(name: Token): CallNode {
    const spec = lookupFunction(name.text);
    if (!spec) {
      const entra = UNSUPPORTED_ENTRA_FUNCTIONS.find((f) => f.toLowerCase() === name.text.toLowerCase());
      if (entra) fail('EXPRESSION_UNKNOWN_FUNCTION', `${entra} is an Entra function that tvsync does not support`, name.pos);
      const hint = closest(name.text, SUPPORTED_FUNCTIONS);
      fail('EXPRESSION_UNKNOWN_FUNCTION', `Unknown function ${name.text}${hint ? `; did you mean ${hint}?` : ''}`, name.pos);
    }
    if (++depth > MAX_NESTING_DEPTH) fail('EXPRESSION_PARSE', `Functions are nested more than ${MAX_NESTING_DEPTH} deep`, name.pos);
    next(); // (
    const args: (Node | null)[] = [];
    if (peek().kind === 'rparen') next();
    else {
      for (;;) {
        const token = peek();
        args.push(token.kind === 'comma' || token.kind === 'rparen' ? null : parseExpression());
        const separator = next();
        if (separator.kind === 'rparen') break;
        if (separator.kind !== 'comma') {
          if (isLogicalWord(separator)) fail('EXPRESSION_PARSE', noLogicalOperators(separator), separator.pos);
          const what = separator.kind === 'eof' ? 'the expression ended' : `found ${describeToken(separator)}`;
          fail('EXPRESSION_PARSE', `Expected "," or ")" to continue ${spec!.name}(, but ${what}`, separator.pos);
        }
      }
    }
    depth--;
    const call: CallNode = { kind: 'call', written: name.text, spec: spec!, args, pos: name.pos };
    checkCall(call);
    return call;
  }

  function checkCall(call: CallNode): void {
    const { spec, args } = call;
    const signature = `${spec.name}(${[...spec.params, ...(spec.repeat ?? []).map((p) => ({ ...p, name: `${p.name}…` }))].map((p) => p.name).join(', ')})`;
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      const expected = spec.minArgs === spec.maxArgs ? `${spec.minArgs}` : spec.maxArgs === Infinity ? `at least ${spec.minArgs}` : `${spec.minArgs} to ${spec.maxArgs}`;
      fail('EXPRESSION_ARITY', `${spec.name} takes ${expected} argument${expected === '1' ? '' : 's'}, got ${args.length}: ${signature}`, call.pos);
    }
    args.forEach((arg, i) => {
      const param = paramAt(spec.params, spec.repeat, i);
      if (arg === null) {
        if (!param.optional) fail('EXPRESSION_ARITY', `${spec.name} needs argument ${i + 1} (${param.name}); it is empty: ${signature}`, call.pos);
        return;
      }
      const problem = checkLiteral(param.kind, arg);
      if (problem) fail('EXPRESSION_PARSE', `${spec.name} argument ${i + 1} (${param.name}): ${problem}`, arg.pos);
    });
    spec.check?.(call, (detail, node) => fail('EXPRESSION_ARITY', detail, node?.pos ?? call.pos));
  }

  const ast = parseExpression();
  const rest = peek();
  if (rest.kind === 'invalid') next(); // raises the lexical problem
  if (rest.kind !== 'eof') {
    const detail = rest.kind === 'rparen'
      ? 'Unexpected ")" with no "(" to close'
      : isLogicalWord(rest)
        ? noLogicalOperators(rest)
        : `Expected the end of the expression, found ${describeToken(rest)}`;
    fail('EXPRESSION_PARSE', detail, rest.pos);
  }
  return { ast, attributes };
}

function isLogicalWord(token: Token): boolean {
  return token.kind === 'ident' && /^(and|or|not)$/i.test(token.text);
}

function noLogicalOperators(token: Token): string {
  return `Entra expressions have no ${token.text.toUpperCase()} operator: nest IIF calls instead (or use Not(…))`;
}

function paramAt(params: ParamSpec[], repeat: ParamSpec[] | undefined, index: number): ParamSpec {
  if (index < params.length) return params[index]!;
  if (!repeat?.length) return { name: `argument ${index + 1}` };
  return repeat[(index - params.length) % repeat.length]!;
}

/** The candidate nearest to `word` by edit distance, if near enough to be a typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  const target = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(target.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(target, candidate.toLowerCase());
    if (distance < bestDistance) { best = candidate; bestDistance = distance; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
