import type { Tier } from '../generated/prisma/enums.js';
import { TIER_LIMITS } from '../rate-limit/limits.js';

export const ERROR_RATE_ALERT = 0.05;
export const RATE_LIMIT_ALERT = 0.8;
export const UNUSED_AFTER_DAYS = 30;

export type AlertSeverity = 'INFO' | 'WARNING' | 'CRITICAL';
export type TrafficAlertCode = 'ERROR_RATE_HIGH' | 'RATE_LIMIT_NEAR' | 'UNUSED';
export type TrafficRecommendationCode = 'UPGRADE_TIER' | 'DOWNGRADE_TIER' | 'FIX_FAILING_ENDPOINTS' | 'REVOKE_UNUSED_KEY';

export interface TrafficAlert {
  code: TrafficAlertCode;
  severity: AlertSeverity;
  message: string;
}

export interface TrafficRecommendation {
  code: TrafficRecommendationCode;
  message: string;
  tier: Tier | null;
  endpoints: string[];
}

export interface InsightFacts {
  requests: number;
  errors: number;
  rateLimited: number;
  tier: Tier;
  /** Requests per minute allowed. */
  limit: number;
  peak: { minute: Date; requests: number } | null;
  /** Most recent request within the last UNUSED_AFTER_DAYS days (null: none). */
  lastRequestAt: Date | null;
  endpoints: { endpoint: string; requests: number; errors: number }[];
}

const TIER_ORDER: Tier[] = ['FREE', 'STARTER', 'PROFESSIONAL', 'ENTERPRISE'];
const percent = (x: number) => `${(Math.round(x * 1000) / 10).toLocaleString('en-US')} %`;

/** The smallest tier whose limit keeps the peak minute at or under 80 % of it (ENTERPRISE with a custom limit above that). */
export function tierForPeak(peakPerMinute: number): { tier: Tier; limit: number } {
  for (const tier of ['FREE', 'STARTER', 'PROFESSIONAL'] as const) {
    if (peakPerMinute <= TIER_LIMITS[tier] * RATE_LIMIT_ALERT) return { tier, limit: TIER_LIMITS[tier] };
  }
  return { tier: 'ENTERPRISE', limit: Math.max(TIER_LIMITS.ENTERPRISE, Math.ceil(peakPerMinute / RATE_LIMIT_ALERT / 100) * 100) };
}

export function trafficAlerts(facts: InsightFacts): TrafficAlert[] {
  const alerts: TrafficAlert[] = [];
  if (facts.requests > 0 && facts.errors / facts.requests > ERROR_RATE_ALERT) {
    const rate = facts.errors / facts.requests;
    alerts.push({
      code: 'ERROR_RATE_HIGH',
      severity: rate > 0.25 ? 'CRITICAL' : 'WARNING',
      message: `${percent(rate)} of ${facts.requests} requests failed (${facts.errors}); the alert threshold is ${percent(ERROR_RATE_ALERT)}.`,
    });
  }
  if (facts.peak && facts.peak.requests > facts.limit * RATE_LIMIT_ALERT) {
    const used = facts.peak.requests / facts.limit;
    alerts.push({
      code: 'RATE_LIMIT_NEAR',
      severity: used >= 1 || facts.rateLimited > 0 ? 'CRITICAL' : 'WARNING',
      message: `The busiest minute (${facts.peak.minute.toISOString()}) had ${facts.peak.requests} requests: ${percent(used)} of the ${facts.tier} limit of ${facts.limit} per minute${facts.rateLimited > 0 ? `; ${facts.rateLimited} requests were rate-limited` : ''}.`,
    });
  }
  if (!facts.lastRequestAt) {
    alerts.push({ code: 'UNUSED', severity: 'INFO', message: `No request in the last ${UNUSED_AFTER_DAYS} days.` });
  }
  return alerts;
}

export function trafficRecommendations(facts: InsightFacts): TrafficRecommendation[] {
  const recommendations: TrafficRecommendation[] = [];
  if (facts.peak && facts.peak.requests > 0) {
    const fit = tierForPeak(facts.peak.requests);
    const current = TIER_ORDER.indexOf(facts.tier);
    const wanted = TIER_ORDER.indexOf(fit.tier);
    if (facts.peak.requests > facts.limit * RATE_LIMIT_ALERT && (wanted > current || fit.limit > facts.limit)) {
      recommendations.push({
        code: 'UPGRADE_TIER',
        tier: fit.tier,
        endpoints: [],
        message: `The busiest minute had ${facts.peak.requests} requests; ${fit.tier} (${fit.limit} per minute) keeps it under ${percent(RATE_LIMIT_ALERT)} of the limit.`,
      });
    } else if (wanted < current) {
      recommendations.push({
        code: 'DOWNGRADE_TIER',
        tier: fit.tier,
        endpoints: [],
        message: `The busiest minute had ${facts.peak.requests} requests; ${fit.tier} (${fit.limit} per minute) would still leave ${percent(1 - facts.peak.requests / fit.limit)} headroom.`,
      });
    }
  }
  const failing = facts.endpoints
    .filter((e) => e.errors > 0 && e.errors / e.requests > ERROR_RATE_ALERT)
    .sort((a, b) => b.errors - a.errors || b.errors / b.requests - a.errors / a.requests || a.endpoint.localeCompare(b.endpoint))
    .slice(0, 3);
  if (failing.length) {
    recommendations.push({
      code: 'FIX_FAILING_ENDPOINTS',
      tier: null,
      endpoints: failing.map((e) => e.endpoint),
      message: `These endpoints fail most: ${failing.map((e) => `${e.endpoint} (${e.errors} of ${e.requests}, ${percent(e.errors / e.requests)})`).join(', ')}.`,
    });
  }
  if (!facts.lastRequestAt) {
    recommendations.push({
      code: 'REVOKE_UNUSED_KEY',
      tier: null,
      endpoints: [],
      message: `The key has not been used in ${UNUSED_AFTER_DAYS} days; revoke it if nothing needs it.`,
    });
  }
  return recommendations;
}
