import type { FieldComplexityValue } from '@pothos/plugin-complexity';
import { complexityFromQuery } from '@pothos/plugin-complexity';
import { BREAK, getNamedType, getNullableType, isListType, visit, type DocumentNode, type GraphQLField } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { DEFAULT_PAGE_SIZE } from '../pagination.js';
import { countBuckets, timeframeRange, type Granularity, type Timeframe } from '../usage/time.js';
import { FORECAST_HISTORY_DAYS, FORECAST_MAX_PERIOD_DAYS } from '../usage/forecast.js';
import { MAX_BUCKETS } from '../usage/usage-request.js';

export const MAX_QUERY_COST = 5000;
export const MAX_QUERY_DEPTH = 15;
/** Total selections (aliases included): bounds how many fields one query can ask for side by side. */
export const MAX_QUERY_BREADTH = 500;
const LIST_MULTIPLIER = 10;

/** A usage report costs one point per day of hourly buckets it can produce (at least one). */
function usageCost(args: Record<string, unknown>): number {
  try {
    const granularity = (args.granularity as Granularity | undefined) ?? 'SUMMARIZED';
    if (granularity === 'MINUTE') return 1;
    const range = (args.range as { from: Date; to: Date } | undefined) ?? (args.timeframe ? timeframeRange(args.timeframe as Timeframe, new Date(), 'UTC') : null);
    if (!range || !(range.from < range.to)) return 1;
    return 1 + Math.ceil(Math.min(countBuckets(range, granularity, 'UTC', MAX_BUCKETS), MAX_BUCKETS) / 24);
  } catch {
    return 1;
  }
}

/** A forecast reads daily buckets of its history and period (at most a year and four weeks): priced like a report of that many days. */
export const FORECAST_COST = 1 + Math.ceil((FORECAST_MAX_PERIOD_DAYS + FORECAST_HISTORY_DAYS) / 24);

/**
 * The cost model: every field costs 1; a connection multiplies what it selects by the page size
 * it asks for (`first`/`last`, default 20) and its `edges` do not multiply again; any other list
 * multiplies by 10; a `usage` field costs one more point per day of hourly buckets; a `forecast`
 * FORECAST_COST; `dimensionValues` one more point per day of its range (it reads its hourly rows).
 */
export function fieldCost(args: Record<string, unknown>, _ctx: unknown, field: GraphQLField<unknown, unknown>): FieldComplexityValue {
  const named = getNamedType(field.type);
  if (named.name.endsWith('Connection')) {
    const size = typeof args.first === 'number' ? args.first : typeof args.last === 'number' ? args.last : DEFAULT_PAGE_SIZE;
    // `dimensionValues` reads the hourly rows of its range (default LAST_30_DAYS).
    const own = field.name === 'dimensionValues' ? usageCost({ range: args.range, timeframe: args.timeframe ?? (args.range ? undefined : 'LAST_30_DAYS'), granularity: 'HOUR' }) : 1;
    return { field: own, multiplier: Math.max(size, 1) };
  }
  if (named.name.endsWith('Edge')) return { field: 1, multiplier: 1 };
  if (field.name === 'usage' && named.name === 'UsageReport') return { field: usageCost(args), multiplier: 1 };
  if (field.name === 'forecast' && named.name === 'UsageForecast') return { field: FORECAST_COST, multiplier: 1 };
  if (isListType(getNullableType(field.type))) return { field: 1, multiplier: LIST_MULTIPLIER };
  return 1;
}

/** What was actually resolved: one point per field value in the response, list items counted one by one. */
export function actualCost(data: unknown): number {
  // Plain loops: responses can hold tens of thousands of usage points.
  if (Array.isArray(data)) {
    let sum = 0;
    for (const item of data) sum += actualCost(item);
    return sum;
  }
  if (data && typeof data === 'object') {
    let sum = 0;
    for (const key in data) {
      const value = (data as Record<string, unknown>)[key];
      sum += 1 + (value && typeof value === 'object' ? actualCost(value) : 0);
    }
    return sum;
  }
  return 0;
}

interface Measured {
  complexity: number;
  depth: number;
  breadth: number;
}

/**
 * Whether a document's cost is the same on every request: no variables, and nothing priced by
 * the clock (`timeframe` arguments, `dimensionValues` whose range defaults to a timeframe).
 */
export function costIsConstant(document: DocumentNode): boolean {
  let constant = true;
  visit(document, {
    VariableDefinition() {
      constant = false;
      return BREAK;
    },
    Variable() {
      constant = false;
      return BREAK;
    },
    Field(node) {
      if (node.name.value === 'dimensionValues') {
        constant = false;
        return BREAK;
      }
      return undefined;
    },
    Argument(node) {
      if (node.name.value === 'timeframe') {
        constant = false;
        return BREAK;
      }
      return undefined;
    },
  });
  return constant;
}

/**
 * Prices each operation before it runs: over the limits it is refused with QUERY_TOO_COMPLEX
 * (with the computed cost and the limit); otherwise `extensions.cost { requested, actual, limit }`.
 * A document whose cost cannot change (`costIsConstant`) is priced once per app.
 */
export function useQueryCost(): Plugin {
  // yoga's parser cache hands the same DocumentNode to every request with the same query text.
  const constantCosts = new WeakMap<DocumentNode, Measured>();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      let measured: Measured | undefined = constantCosts.get(args.document);
      if (!measured) {
        try {
          measured = complexityFromQuery(args.document, {
            schema: args.schema,
            ctx: args.contextValue,
            variables: (args.variableValues ?? {}) as Record<string, unknown>,
          });
        } catch {
          return; // invalid variables and the like: execution reports them properly
        }
        if (costIsConstant(args.document)) constantCosts.set(args.document, measured);
      }
      const limits = { complexity: MAX_QUERY_COST, depth: MAX_QUERY_DEPTH, breadth: MAX_QUERY_BREADTH };
      const exceeded = (['complexity', 'depth', 'breadth'] as const).find((kind) => measured[kind] > limits[kind]);
      if (exceeded) {
        const what = { complexity: 'cost', depth: 'depth', breadth: 'number of selections' }[exceeded];
        setResultAndStopExecution({
          errors: [
            createGraphQLError(`The query's ${what} is ${measured[exceeded]}, over the limit of ${limits[exceeded]}. Ask for smaller pages, fewer fields or coarser usage buckets.`, {
              extensions: { code: 'QUERY_TOO_COMPLEX', kind: exceeded, cost: measured.complexity, depth: measured.depth, breadth: measured.breadth, limit: limits[exceeded] },
            }),
          ],
          extensions: { cost: { requested: measured.complexity, actual: 0, limit: MAX_QUERY_COST } },
        });
        return;
      }
      return {
        onExecuteDone({ result, setResult }) {
          if (!result || Symbol.asyncIterator in result) return;
          setResult({
            ...result,
            extensions: { ...result.extensions, cost: { requested: measured.complexity, actual: actualCost(result.data), limit: MAX_QUERY_COST } },
          });
        },
      };
    },
  };
}
