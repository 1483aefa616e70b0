import { expect } from 'vitest';
import { newStatementLog, recordStatements, type StatementLog } from '../../src/db/statement-recorder.js';
import type { App } from '../../src/yoga.js';

export interface GraphQLResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T; errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, any> }>; extensions?: Record<string, any> };
  /** Every SQL statement the request ran, in order. */
  statements: string[];
}

/** One GraphQL request over the app's real HTTP pipeline (`yoga.fetch`), recording its SQL. */
export async function graphql<T = any>(
  app: App,
  query: string,
  options: { key?: string | null; variables?: Record<string, unknown>; authorization?: string } = {},
): Promise<GraphQLResponse<T>> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.key) headers.authorization = `Bearer ${options.key}`;
  const log: StatementLog = newStatementLog();
  const response = await recordStatements(log, () =>
    app.yoga.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables: options.variables }),
    }),
  );
  return { status: response.status, headers: response.headers, body: await response.json(), statements: log.statements };
}

/** A mutation that must succeed: no errors and no `userErrors`. Returns its payload. */
export async function mutationPayload(app: App, query: string, options: { key: string; variables: Record<string, unknown> }): Promise<any> {
  const response = await graphql(app, query, options);
  expect(response.body.errors).toBeUndefined();
  const payload = Object.values(response.body.data!)[0] as { userErrors: unknown[] };
  expect(payload.userErrors).toEqual([]);
  return payload;
}
