import { Writable } from 'node:stream';

/** A stand-in for a terminal: cli-progress and readline write their escape codes into it. */
export function fakeTerminal() {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  stream.isTTY = true;
  stream.columns = 140;
  // The screen's last state, roughly: escape codes removed.
  // eslint-disable-next-line no-control-regex
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => out.replace(/\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/g, '') };
}
