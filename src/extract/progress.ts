/**
 * Extract progress for people at a terminal: one bar per pass (the k-anonymity check reads every
 * row, then the rows are written), filled against the number of stored records of the dataset's
 * type. Off a terminal (cron, pipes) nothing is drawn: the summary at the end says it all.
 * A line is at most 76 columns (18 + a 30-wide bar + 6-digit counts), and log lines written while
 * the bars are shown are printed above them (src/log.ts divertLogLines).
 */
import cliProgress from 'cli-progress';
import { divertLogLines } from '../log.ts';
import type { EntityType } from '../model/records.ts';
import type { Dataset } from './columns.ts';
import type { ExtractPass } from './extract.ts';

/** The stored record type behind each dataset: the bar's total (an estimate: schools are a share of organisations). */
const ENTITY_OF_DATASET: Record<Dataset, EntityType> = {
  people: 'person', enrollments: 'enrollment', classes: 'class', schools: 'org', organizations: 'org',
  courses: 'course', sessions: 'academicSession', guardianships: 'guardianship',
};

const LABEL: Record<ExtractPass, string> = { check: 'k-anonymity check', write: 'writing' };

export function extractProgress(dataset: Dataset, counts: Record<EntityType, number>, stream: NodeJS.WriteStream = process.stderr) {
  if (!stream.isTTY) return { onProgress: undefined, stop: () => {} };
  const total = counts[ENTITY_OF_DATASET[dataset]] ?? 0;
  const multi = new cliProgress.MultiBar(
    { stream, format: ' {pass} {bar} {percentage}% | {value}/{total} rows', hideCursor: true, clearOnComplete: false, barsize: 30, forceRedraw: true },
    cliProgress.Presets.shades_classic,
  );
  const restoreLog = divertLogLines((line) => multi.log(line.endsWith('\n') ? line : `${line}\n`));
  const bars = new Map<ExtractPass, cliProgress.SingleBar>();
  return {
    onProgress: (e: { pass: ExtractPass; rows: number }) => {
      let bar = bars.get(e.pass);
      if (!bar) bars.set(e.pass, (bar = multi.create(total, 0, { pass: LABEL[e.pass].padEnd(18) })));
      bar.setTotal(Math.max(total, e.rows));
      bar.update(e.rows);
    },
    stop: () => {
      multi.update(); // prints log lines still waiting for a redraw
      multi.stop();
      restoreLog();
    },
  };
}
