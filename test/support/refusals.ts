/** The message of the error `f` throws; a test failure when it throws none (it was to refuse). */
export function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}
