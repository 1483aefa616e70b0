import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

/**
 * `npm run test:adversarial`'s table: cells tried / passed per area and database. An area is a
 * top-level `describe` of test/adversarial/*.test.ts (the matrix's subscription cells: `subscriptions`); the focused files of other suites it re-runs
 * (webhook safety, faults, overlapping uploads) are an area each. With WRITE_RELIABILITY=1 it writes RELIABILITY.md.
 */

interface Row {
  tried: number;
  passed: number;
  failed: string[];
}

const FILE_AREAS: [RegExp, string][] = [
  [/webhook-safety/, 'webhook receiver behaviours (test/webhook-safety*)'],
  [/faults/, 'fault tests (test/faults*)'],
  [/ingest-concurrency/, 'overlapping uploads (test/ingest-concurrency*)'],
];

/** Files of the adversarial suite: test/adversarial/* and the focused files it re-runs (the rest of `npm test` is not counted). */
function isAdversarial(module: TestModule): boolean {
  const file = path.basename(module.moduleId);
  return module.moduleId.split(path.sep).includes('adversarial') || FILE_AREAS.some(([pattern]) => pattern.test(file));
}

function areaOf(module: TestModule, topLevel: string | null): string {
  const file = path.basename(module.moduleId);
  for (const [pattern, area] of FILE_AREAS) if (pattern.test(file)) return area;
  return topLevel ?? file;
}

export default class ReliabilityReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const table = new Map<string, Map<string, Row>>();
    const projects = new Set<string>();
    for (const module of testModules) {
      if (!isAdversarial(module)) continue;
      const project = module.project.name || 'default';
      projects.add(project);
      for (const test of module.children.allTests()) {
        let suite = test.parent;
        let topLevel: string | null = null;
        while (suite.type === 'suite') {
          topLevel = suite.name;
          suite = suite.parent;
        }
        const area = areaOf(module, topLevel);
        const state = test.result().state;
        if (state === 'skipped' || state === 'pending') continue;
        const byProject = table.get(area) ?? new Map<string, Row>();
        table.set(area, byProject);
        const row = byProject.get(project) ?? { tried: 0, passed: 0, failed: [] };
        byProject.set(project, row);
        row.tried++;
        if (state === 'passed') row.passed++;
        else row.failed.push(`${test.name}: ${(test.result().errors?.[0]?.message ?? '').split('\n')[0]!.slice(0, 200)}`);
      }
    }
    if (!table.size) return;
    const columns = [...projects].sort();
    const header = `| area | ${columns.map((p) => `${p}: passed / tried`).join(' | ')} |`;
    const rule = `|---|${columns.map(() => '---:').join('|')}|`;
    const lines = [...table.entries()].map(([area, byProject]) => {
      const cells = columns.map((p) => {
        const row = byProject.get(p);
        return row ? `${row.passed} / ${row.tried}` : '–';
      });
      return `| ${area} | ${cells.join(' | ')} |`;
    });
    const totals = columns.map((p) => {
      let tried = 0;
      let passed = 0;
      for (const byProject of table.values()) {
        tried += byProject.get(p)?.tried ?? 0;
        passed += byProject.get(p)?.passed ?? 0;
      }
      return `**${passed} / ${tried}**`;
    });
    const markdown = [header, rule, ...lines, `| **all** | ${totals.join(' | ')} |`].join('\n');
    process.stdout.write(`\nAdversarial suite: cells passed / tried per area\n\n${markdown}\n\n`);

    if (process.env.WRITE_RELIABILITY === '1') {
      const failing = [...table.entries()].flatMap(([area, byProject]) =>
        [...byProject.entries()].flatMap(([project, row]) => row.failed.map((name) => `- ${project} · ${area} · ${name}`)),
      );
      const document = [
        '# Reliability',
        '',
        'The latest figures of the adversarial suite (`test/adversarial/`): the authorization matrix generated from the',
        'schema (every root field, node type, connection, usage group relation, mutation, subscription and HTTP route ×',
        'every kind of caller), the bad-input corpus, and the concurrency and fault cases. A cell is one request, one',
        'subscription stream (opened, fed events it may and may not see, closed) or one scenario,',
        'judged by the rules in `test/adversarial/rules.ts`.',
        '',
        `Run on ${new Date().toISOString().slice(0, 10)} with:`,
        '',
        '```sh',
        'WRITE_RELIABILITY=1 TEST_DATABASE_URL=postgresql://… npm run test:adversarial',
        '```',
        '',
        markdown,
        '',
        failing.length ? `## Failing cells (${failing.length})\n\n${failing.slice(0, 300).join('\n')}${failing.length > 300 ? `\n- … and ${failing.length - 300} more` : ''}` : 'Every cell passed.',
        '',
      ].join('\n');
      writeFileSync(path.resolve('RELIABILITY.md'), document);
      process.stdout.write('wrote RELIABILITY.md\n');
    }
  }
}
