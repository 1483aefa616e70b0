import type { Context } from '../context.js';
import { decodeId, encodeId } from '../global-id.js';
import { visibleApiKeys, visibleApps, visibleDatastreams, visibleFeatures, visibleProjects, visibleWorkspaces } from '../schema/visibility.js';
import { RestInputError } from './params.js';

/** The node types whose ids the REST routes take: GraphQL global ids, as `node(id:)` takes them. */
export type IdType = 'Workspace' | 'Datastream' | 'Project' | 'App' | 'Feature' | 'ApiKey';

/** Decodes a parameter's global id; a malformed one, or one of another type, is a 400 naming the parameter. */
export function decodeParameterId(parameter: string, typename: IdType | 'Realm', globalId: string): string {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeId(globalId);
  } catch (error) {
    throw new RestInputError((error as Error).message, 'INVALID_ID', parameter);
  }
  if (decoded.typename !== typename) {
    throw new RestInputError(`\`${parameter}\` takes ${typename} ids; this one is a ${decoded.typename} id.`, 'INVALID_ID', parameter);
  }
  return decoded.id;
}

async function visibleOf(ctx: Context, typename: IdType, ids: string[]): Promise<Set<string>> {
  const where = { id: { in: ids } };
  const select = { id: true } as const;
  const rows: { id: string }[] = await {
    Workspace: () => ctx.prisma.workspace.findMany({ where: { AND: [where, visibleWorkspaces(ctx)] }, select }),
    Datastream: () => ctx.prisma.datastream.findMany({ where: { AND: [where, visibleDatastreams(ctx)] }, select }),
    Project: () => ctx.prisma.project.findMany({ where: { AND: [where, visibleProjects(ctx)] }, select }),
    App: () => ctx.prisma.app.findMany({ where: { AND: [where, visibleApps(ctx)] }, select }),
    Feature: () => ctx.prisma.feature.findMany({ where: { AND: [where, visibleFeatures(ctx)] }, select }),
    ApiKey: () => ctx.prisma.apiKey.findMany({ where: { AND: [where, visibleApiKeys(ctx)] }, select }),
  }[typename]();
  return new Set(rows.map((row) => row.id));
}

/**
 * A repeatable id filter: the ids the caller sees (the one visibility rule), and the global ids of
 * the others, which are ignored and named in the answer's warnings (they do not exist for the key).
 */
export async function filterIds(ctx: Context, parameter: string, typename: IdType, globalIds: string[] | undefined): Promise<{ ids?: string[]; ignored: string[] }> {
  if (!globalIds) return { ignored: [] };
  const decoded = globalIds.map((globalId) => ({ globalId, id: decodeParameterId(parameter, typename, globalId) }));
  const visible = await visibleOf(ctx, typename, decoded.map((d) => d.id));
  return {
    ids: [...new Set(decoded.filter((d) => visible.has(d.id)).map((d) => d.id))],
    ignored: decoded.filter((d) => !visible.has(d.id)).map((d) => d.globalId),
  };
}

/** The loaders' warnings name GraphQL's `filter.…` fields: the REST answer names its own parameters. */
export function withParameterNames(warnings: string[], names: Record<string, string>): string[] {
  return warnings.map((warning) => warning.replace(/`filter\.(\w+)`/g, (whole, field: string) => (names[field] ? `\`${names[field]}\`` : whole)));
}

export const globalIdOf = (typename: IdType | 'Realm', id: string | null): string | null => (id === null ? null : encodeId(typename, id));
