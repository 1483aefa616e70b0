export interface UsageDimensions {
  workspaceId?: string | null;
  datastreamId?: string | null;
  projectId?: string | null;
  appId?: string | null;
  billingTag?: string | null;
  resource?: string | null;
  apiKeyId?: string | null;
}

/** The dimensions in their fixed order (the order of `dimensionKey`). */
export const DIMENSION_NAMES = ['workspaceId', 'datastreamId', 'projectId', 'appId', 'billingTag', 'resource', 'apiKeyId'] as const satisfies readonly (keyof UsageDimensions)[];

/** Every dimension present, null when absent: a bucket's or a report group's values. */
export type DimensionValues = { [K in keyof UsageDimensions]-?: string | null };

export function dimensionValuesOf(source: UsageDimensions): DimensionValues {
  // Spelled out (not built from DIMENSION_NAMES): it runs once per usage point.
  return {
    workspaceId: source.workspaceId ?? null,
    datastreamId: source.datastreamId ?? null,
    projectId: source.projectId ?? null,
    appId: source.appId ?? null,
    billingTag: source.billingTag ?? null,
    resource: source.resource ?? null,
    apiKeyId: source.apiKeyId ?? null,
  };
}

function escapeDimension(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\|/g, '\\|');
}

/**
 * The non-null key of one dimension combination (`UsageHourly.dimensionKey`,
 * `UsageUniqueKey.dimensionKey`): the values in a fixed order (workspace, datastream, project,
 * app, billing tag, resource, api key) joined by `|`, absent ones empty. Ids are lower-cased;
 * `\` and `|` inside free-text values are backslash-escaped so distinct combinations never collide.
 * An empty string and null are the same (absent) value: normalize blanks to null before storing.
 * Pure and stable: ingestion relies on it to find the bucket of an event.
 */
export function dimensionKey(dimensions: UsageDimensions): string {
  const id = (value: string | null | undefined) => (value ? value.toLowerCase() : '');
  const text = (value: string | null | undefined) => (value ? escapeDimension(value) : '');
  return [
    id(dimensions.workspaceId),
    id(dimensions.datastreamId),
    id(dimensions.projectId),
    id(dimensions.appId),
    text(dimensions.billingTag),
    text(dimensions.resource),
    id(dimensions.apiKeyId),
  ].join('|');
}
