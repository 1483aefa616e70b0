import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
  SqlQuery,
  Transaction,
} from '@prisma/driver-adapter-utils';

/** The SQL statements run on behalf of one unit of work (a GraphQL request, a test step). */
export interface StatementLog {
  statements: string[];
}

const currentLog = new AsyncLocalStorage<StatementLog>();

export function recordStatements<T>(log: StatementLog, work: () => T): T {
  return currentLog.run(log, work);
}

export function newStatementLog(): StatementLog {
  return { statements: [] };
}

function note(query: SqlQuery) {
  currentLog.getStore()?.statements.push(query.sql);
}

function instrumentQueryable<T extends SqlDriverAdapter | Transaction>(target: T): T {
  const queryRaw = target.queryRaw.bind(target);
  const executeRaw = target.executeRaw.bind(target);
  target.queryRaw = (query) => {
    note(query);
    return queryRaw(query);
  };
  target.executeRaw = (query) => {
    note(query);
    return executeRaw(query);
  };
  return target;
}

/**
 * Counts statements at the driver adapter, where every SQL statement Prisma sends passes in the
 * caller's async context, so each request sees its own statements and no one else's.
 */
export function instrumentAdapterFactory(factory: SqlMigrationAwareDriverAdapterFactory): SqlMigrationAwareDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    async connect() {
      const adapter = instrumentQueryable(await factory.connect());
      const startTransaction = adapter.startTransaction.bind(adapter);
      adapter.startTransaction = async (...args) => instrumentQueryable(await startTransaction(...args));
      return adapter;
    },
    connectToShadowDb: () => factory.connectToShadowDb(),
  };
}

export function currentStatementLog(): StatementLog | undefined {
  return currentLog.getStore();
}

/** Work that belongs to no request (background writes) stays out of every request's count. */
export function outsideRecording<T>(work: () => T): T {
  return currentLog.exit(work);
}
