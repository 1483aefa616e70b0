/**
 * The order test files start in. The suite is CPU-bound on two cores and a long file started last
 * is the run's tail, so the files known to take longest start first, whatever their project
 * (database); the others follow vitest's own order (failed first, then longest in earlier runs on
 * this machine, else largest). On a clean clone, as in CI, vitest knows no earlier run.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The files of `npm test` that take longest (wall time within a whole run, ≥ 9 s), longest first. */
export const LONGEST_FILES = [
  'test/seed.test.ts',
  'test/migrations.test.ts',
  'test/adversarial/authorization-matrix.test.ts',
  'test/adversarial/authorization-matrix-mutations.test.ts',
  'test/server.test.ts',
  'test/console-browser.test.ts',
  'test/ingest-log.test.ts',
  'test/rollups.test.ts',
  'test/readme.test.ts',
  'test/pglite-template.test.ts',
  'test/operator-cli.test.ts',
  'test/error-contract.test.ts',
  'test/walkthrough.test.ts',
  'test/partitions.test.ts',
  'test/bench-queries.test.ts',
  'test/rate-limit.test.ts',
  'test/cli.test.ts',
  'test/usage.test.ts',
  'test/quota-server.test.ts',
  'test/workspace-admin.test.ts',
];

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // A renamed or removed file would silently lose its place: name it.
    const gone = LONGEST_FILES.filter((file) => !existsSync(path.join(this.ctx.config.root, file)));
    if (gone.length) throw new Error(`test/sequencer.ts names files that do not exist: ${gone.join(', ')}`);
    const ordered = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const index = LONGEST_FILES.indexOf(path.relative(file.project.config.root, file.moduleId).split(path.sep).join('/'));
      return index === -1 ? LONGEST_FILES.length : index;
    };
    // Array.prototype.sort is stable: files of equal rank keep vitest's order.
    return ordered.sort((a, b) => rank(a) - rank(b));
  }
}
