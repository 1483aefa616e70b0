/**
 * `Realm.usageExport`: the rows of the CSV usage exports (`GET /exports/usage/monthly.csv`,
 * `/exports/usage/daily.csv`), through GraphQL. See src/exports/usage-export.ts.
 */
import { createGraphQLError } from 'graphql-yoga';
import { builder } from '../builder.js';
import { EXPORT_KINDS, ExportInputError, loadExportRows, resolveExportRequest, type UsageExportRow } from '../exports/usage-export.js';
import { realmFacts } from '../usage/usage-loader.js';

const UsageExportKindEnum = builder.enumType('UsageExportKind', {
  values: EXPORT_KINDS,
  description: 'MONTHLY: one calendar month of the last 12. DAILY: up to 31 days, starting at most 6 months ago. Both in the realm\'s time zone.',
});

const UsageExportRowRef = builder.objectRef<UsageExportRow>('UsageExportRow').implement({
  description: 'One period × team (workspace) × app × product (feature): the same rows, in the same order, as the CSV exports.',
  fields: (t) => ({
    period: t.exposeString('period', { description: '`YYYY-MM` (MONTHLY) or `YYYY-MM-DD` (DAILY), in the realm\'s time zone: the CSV\'s `month` or `date`.' }),
    teamId: t.exposeID('teamId', { nullable: true, description: 'The workspace\'s id; null for usage attributed to no workspace.' }),
    team: t.exposeString('team', { nullable: true, description: 'The workspace\'s name.' }),
    appId: t.exposeID('appId', { nullable: true, description: 'The app\'s id; null for usage attributed to no app.' }),
    app: t.exposeString('app', { nullable: true }),
    product: t.exposeString('product', { description: 'The feature\'s key.' }),
    unit: t.exposeString('unit'),
    quantity: t.field({ type: 'Decimal', resolve: (row) => row.quantity, description: 'Exact, as a decimal string.' }),
  }),
});

builder.prismaObjectField('Realm', 'usageExport', (t) =>
  t.field({
    type: [UsageExportRowRef],
    description:
      'Usage by team (workspace) × app × product per month or day, in the realm\'s time zone: the rows of the CSV exports. ' +
      'MONTHLY takes `month` (YYYY-MM, default: the current month); DAILY takes `startDate` and `endDate` (YYYY-MM-DD, inclusive; default: the month to date). ' +
      'A workspace-scoped key sees its subtree only.',
    authScopes: { usageRead: true },
    args: {
      kind: t.arg({ type: UsageExportKindEnum, required: true }),
      month: t.arg.string(),
      startDate: t.arg.string(),
      endDate: t.arg.string(),
    },
    resolve: async (_realm, args, ctx) => {
      const facts = await realmFacts(ctx);
      let request;
      try {
        request = resolveExportRequest(args.kind, args, ctx.now, facts.timeZone);
      } catch (error) {
        if (error instanceof ExportInputError) {
          throw createGraphQLError(error.message, { extensions: { code: 'BAD_USER_INPUT', reason: error.reason } });
        }
        throw error;
      }
      return loadExportRows(ctx.readPrisma ?? ctx.prisma, ctx.viewer, request);
    },
  }),
);
