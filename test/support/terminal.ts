import { Writable } from 'node:stream';

/** A stand-in for a terminal: cli-progress and readline write their escape codes into it. */
export function fakeTerminal(columns = 140) {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  stream.isTTY = true;
  stream.columns = columns;
  return {
    stream: stream as unknown as NodeJS.WriteStream,
    /** The screen's last state, roughly: escape codes removed. */
    // eslint-disable-next-line no-control-regex
    text: () => out.replace(/\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/g, ''),
    /** Every piece of text written between line breaks and cursor movements: what one screen line shows at a time. */
    // eslint-disable-next-line no-control-regex
    segments: () => out.split(/\n|\r|\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/).filter(Boolean),
  };
}
