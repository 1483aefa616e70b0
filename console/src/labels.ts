import type { UsageGroupNamesFragment } from './generated.js';

/** A usage group as one label: the names of the dimensions grouped by, or "All". */
export function groupLabel(group: UsageGroupNamesFragment): string {
  const parts = [group.workspace?.name, group.app?.name, group.project?.name, group.datastream?.name, group.apiKey?.name, group.billingTag, group.resource].filter(Boolean);
  return parts.length ? parts.join(' · ') : 'All';
}
