/** Walks a parsed expression against one user's attributes. Pure: no clock, no I/O. */
import { readAttribute, sourceAttribute } from '../attributes';
import type { CallNode, Node } from './ast';
import { ExpressionError } from './errors';
import type { Args, EvalEnv } from './functions';
import { compareValues, ConversionError, type ExpressionValue, fromAttribute } from './values';

export interface EvalInput {
  attributes: Record<string, unknown>;
  appRoleAssignments?: string[];
  env: EvalEnv;
  source: string;
}

export function evaluateNode(node: Node, input: EvalInput): ExpressionValue {
  switch (node.kind) {
    case 'string':
    case 'number':
    case 'boolean':
      return node.value;
    case 'attribute': {
      const raw = node.name === 'appRoleAssignments' && input.appRoleAssignments !== undefined
        ? input.appRoleAssignments
        : readAttribute(input.attributes, node.name);
      try {
        return fromAttribute(raw, node.name, sourceAttribute(node.name)?.type);
      } catch (error) {
        throw runtime(error, node.pos, input.source);
      }
    }
    case 'compare': {
      const left = evaluateNode(node.left, input);
      const right = evaluateNode(node.right, input);
      try {
        return compareValues(node.op, left, right);
      } catch (error) {
        throw runtime(error, node.pos, input.source);
      }
    }
    case 'call':
      return evaluateCall(node, input);
  }
}

function evaluateCall(call: CallNode, input: EvalInput): ExpressionValue {
  const args: Args = {
    count: call.args.length,
    has: (i) => i < call.args.length && call.args[i] !== null,
    value: (i) => {
      const arg = call.args[i];
      return arg ? evaluateNode(arg, input) : null;
    },
  };
  try {
    return call.spec.evaluate(args, input.env, call);
  } catch (error) {
    if (error instanceof ExpressionError) throw error;
    throw runtime(error, call.pos, input.source, call.spec.name);
  }
}

function runtime(error: unknown, pos: number, source: string, fn?: string): ExpressionError {
  if (!(error instanceof ConversionError)) throw error;
  return new ExpressionError('EXPRESSION_RUNTIME', fn ? `${fn}: ${error.message}` : error.message, pos, source);
}
