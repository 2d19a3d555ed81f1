/** The one error type of the expression engine: parse problems and runtime failures alike. */

export type ExpressionErrorCode =
  | 'EXPRESSION_PARSE'
  | 'EXPRESSION_UNKNOWN_FUNCTION'
  | 'EXPRESSION_ARITY'
  | 'EXPRESSION_UNKNOWN_ATTRIBUTE'
  | 'EXPRESSION_RUNTIME';

export class ExpressionError extends Error {
  /**
   * @param position 0-based offset into `expression` of the character (or the function call) the
   *   problem is about, so an editor can put the cursor there.
   * @param detail the sentence without the location; `message` adds "at position N: <expression>".
   */
  constructor(
    readonly code: ExpressionErrorCode,
    readonly detail: string,
    readonly position: number,
    readonly expression: string,
  ) {
    super(`${detail} at position ${position}: ${expression}`);
    this.name = 'ExpressionError';
  }
}

export function isExpressionError(value: unknown): value is ExpressionError {
  return value instanceof ExpressionError;
}
