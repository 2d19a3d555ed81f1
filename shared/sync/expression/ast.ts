/** The parsed form of an expression. Positions are 0-based offsets into the source text. */
import type { ComparisonOperator } from './values';
import type { FunctionSpec } from './functions';

export type Node = StringNode | NumberNode | BooleanNode | AttributeNode | CallNode | CompareNode;

export interface StringNode { kind: 'string'; value: string; pos: number }
export interface NumberNode { kind: 'number'; value: number; pos: number }
export interface BooleanNode { kind: 'boolean'; value: boolean; pos: number }
/** `name` is canonical (see attributes.ts); `written` is how the expression spelled it. */
export interface AttributeNode { kind: 'attribute'; name: string; written: string; pos: number }
export interface CallNode {
  kind: 'call';
  /** The function's name as the expression wrote it (names are case-insensitive). */
  written: string;
  spec: FunctionSpec;
  /** One entry per argument position; null marks an empty position, as in `Switch([a], , "x", "y")`. */
  args: (Node | null)[];
  /** Which documented form of the function this call uses, when it has several (Replace). */
  variant?: string;
  pos: number;
}
export interface CompareNode { kind: 'compare'; op: ComparisonOperator; left: Node; right: Node; pos: number }
