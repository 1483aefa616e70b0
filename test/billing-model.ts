/**
 * An independent model of the billing rules as the README states them, written without the
 * gateway's billing code: exact rationals (BigInt numerator / denominator), local days found from
 * Intl.DateTimeFormat by bisection. Deliberately plain; property tests compare the gateway with it.
 */
import { localTime } from './local-calendar-model.js';

// ─── Rationals ─────────────────────────────────────────────────────────────────────────────────

const gcd = (a: bigint, b: bigint): bigint => {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
};

export class Q {
  readonly n: bigint;
  readonly d: bigint;
  constructor(n: bigint, d = 1n) {
    if (d === 0n) throw new Error('division by zero');
    if (d < 0n) [n, d] = [-n, -d];
    const g = gcd(n, d) || 1n;
    this.n = n / g;
    this.d = d / g;
  }
  static of(text: string | number): Q {
    const s = String(text);
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s);
    if (!match) throw new Error(`not a decimal: ${s}`);
    const decimals = match[3] ?? '';
    const n = BigInt(match[2]! + decimals) * (match[1] ? -1n : 1n);
    return new Q(n, 10n ** BigInt(decimals.length));
  }
  plus(o: Q) { return new Q(this.n * o.d + o.n * this.d, this.d * o.d); }
  minus(o: Q) { return new Q(this.n * o.d - o.n * this.d, this.d * o.d); }
  times(o: Q) { return new Q(this.n * o.n, this.d * o.d); }
  div(o: Q) { return new Q(this.n * o.d, this.d * o.n); }
  cmp(o: Q) { const x = this.n * o.d - o.n * this.d; return x < 0n ? -1 : x > 0n ? 1 : 0; }
  isZero() { return this.n === 0n; }
  isPositive() { return this.n > 0n; }
  /** Rounded to `places` decimals toward zero (`down`) or half away from zero (`halfUp`). */
  round(places: number, mode: 'down' | 'halfUp'): Q {
    const scale = 10n ** BigInt(places);
    const scaled = this.n * scale;
    const negative = scaled < 0n;
    const abs = negative ? -scaled : scaled;
    let q = abs / this.d;
    if (mode === 'halfUp' && (abs % this.d) * 2n >= this.d) q += 1n;
    return new Q(negative ? -q : q, scale);
  }
  /** The exact decimal, or null when the value has no finite decimal expansion. */
  toDecimal(): string | null {
    let d = this.d;
    let twos = 0n;
    let fives = 0n;
    while (d % 2n === 0n) { d /= 2n; twos++; }
    while (d % 5n === 0n) { d /= 5n; fives++; }
    if (d !== 1n) return null;
    const places = twos > fives ? twos : fives;
    const scaled = (this.n * 10n ** places) / this.d;
    const negative = scaled < 0n;
    const digits = (negative ? -scaled : scaled).toString().padStart(Number(places) + 1, '0');
    const int = digits.slice(0, digits.length - Number(places));
    const frac = digits.slice(digits.length - Number(places)).replace(/0+$/, '');
    return `${negative ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
  }
}

const ZERO = new Q(0n);
const minQ = (a: Q, b: Q) => (a.cmp(b) <= 0 ? a : b);
const sumQ = (values: Q[]) => values.reduce((a, b) => a.plus(b), ZERO);

// ─── Calendar ──────────────────────────────────────────────────────────────────────────────────

const dateNumber = (l: { year: number; month: number; day: number }) => l.year * 10_000 + l.month * 100 + l.day;

/** The first instant (to the second) whose local date is `year-month-day` or later, by bisection over Intl. */
export function modelDayStart(year: number, month: number, day: number, timeZone: string): number {
  const date = new Date(Date.UTC(year, month - 1, day));
  const target = dateNumber({ year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() });
  let lo = Date.UTC(year, month - 1, day) - 27 * 3_600_000;
  let hi = Date.UTC(year, month - 1, day) + 27 * 3_600_000;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (dateNumber(localTime(mid, timeZone)) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface ModelMonth {
  name: string;
  from: number;
  to: number;
  /** First instant of each calendar day of the month. */
  dayStarts: number[];
  hours: number;
}

export function modelMonth(name: string, timeZone: string): ModelMonth {
  const [year, month] = name.split('-').map(Number) as [number, number];
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const dayStarts = Array.from({ length: days }, (_, i) => modelDayStart(year, month, i + 1, timeZone));
  const to = modelDayStart(year, month + 1, 1, timeZone);
  return { name, from: dayStarts[0]!, to, dayStarts, hours: Math.round((to - dayStarts[0]!) / 3_600_000) };
}

// ─── Billing rules ─────────────────────────────────────────────────────────────────────────────

export type Category = 'THIRD_PARTY_ADDON' | 'DATA_ADDON' | 'PRIVATE_SPACE' | 'SHIELD_SPACE';
const CATEGORY_ORDER: Category[] = ['THIRD_PARTY_ADDON', 'DATA_ADDON', 'PRIVATE_SPACE', 'SHIELD_SPACE'];
type Pool = 'general' | 'privateSpace' | 'shieldSpace';
const POOL_OF_KIND = { GENERAL: 'general', PRIVATE_SPACE: 'privateSpace', SHIELD_SPACE: 'shieldSpace' } as const;

export interface ModelInput {
  month: ModelMonth;
  products: { id: string; key: string; category: Category; space: boolean; used: string; prices: { amount: string; validFrom: number }[] }[];
  contracts: { startsAt: number; endsAt: number; licenses: { productId: string; quantity: string }[] }[];
  grants: { kind: keyof typeof POOL_OF_KIND; credits: string; startsAt: number; endsAt: number | null }[];
}

export interface ModelProduct {
  id: string;
  licensed: Q;
  used: Q;
  coveredByLicense: Q;
  coveredByCredits: Q;
  creditsApplied: Q;
  onDemand: Q;
  onDemandCost: Q | null;
  unitPrice: Q | null;
}

/** Days of the month whose first instant is in `[startsAt, endsAt)`. */
const daysIn = (month: ModelMonth, startsAt: number, endsAt: number | null) =>
  month.dayStarts.filter((t) => t >= startsAt && (endsAt === null || t < endsAt)).length;

/** A monthly allowance's share: quantity × days in force / days of the month, exact. */
const share = (month: ModelMonth, quantity: string, startsAt: number, endsAt: number | null) =>
  Q.of(quantity).times(new Q(BigInt(daysIn(month, startsAt, endsAt)), BigInt(month.dayStarts.length)));

export function modelBill(input: ModelInput) {
  const { month } = input;
  const pools: Record<Pool, Q> = { general: ZERO, privateSpace: ZERO, shieldSpace: ZERO };
  for (const pool of Object.keys(pools) as Pool[]) {
    const shares = input.grants.filter((g) => POOL_OF_KIND[g.kind] === pool).map((g) => share(month, g.credits, g.startsAt, g.endsAt));
    pools[pool] = sumQ(shares).round(9, 'halfUp');
  }
  const available = { ...pools };
  const spent = new Set<Pool>();
  const ordered = [...input.products].sort(
    (a, b) => CATEGORY_ORDER.indexOf(a.category) - CATEGORY_ORDER.indexOf(b.category) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  const results = new Map<string, ModelProduct>();
  for (const p of ordered) {
    const licensed = sumQ(
      input.contracts.flatMap((c) => c.licenses.filter((l) => l.productId === p.id).map((l) => share(month, l.quantity, c.startsAt, c.endsAt))),
    ).round(9, 'halfUp');
    // Spaces: the hourly counts added up (`used` is the space-hours) over the month's hours.
    const used = p.space ? Q.of(p.used).div(new Q(BigInt(month.hours))).round(9, 'halfUp') : Q.of(p.used);
    const inForce = p.prices.filter((x) => x.validFrom <= month.from).sort((a, b) => b.validFrom - a.validFrom)[0];
    const price = inForce ? Q.of(inForce.amount) : null;
    const coveredByLicense = minQ(used, licensed);
    let rest = used.minus(coveredByLicense);
    let coveredByCredits = ZERO;
    let credits = ZERO;
    const usable = ([p.category === 'PRIVATE_SPACE' ? 'privateSpace' : null, p.category === 'SHIELD_SPACE' ? 'shieldSpace' : null, 'general'] as (Pool | null)[])
      .filter((x): x is Pool => x !== null && !spent.has(x));
    const money = sumQ(usable.map((x) => pools[x]));
    if (price && price.isPositive() && rest.isPositive() && money.isPositive()) {
      coveredByCredits = minQ(rest, money.div(price).round(9, 'down'));
      credits = coveredByCredits.times(price);
      rest = rest.minus(coveredByCredits);
      let owed = credits;
      for (const x of usable) {
        const take = minQ(owed, pools[x]);
        pools[x] = pools[x].minus(take);
        owed = owed.minus(take);
      }
      if (rest.isPositive()) usable.forEach((x) => spent.add(x));
    }
    results.set(p.id, {
      id: p.id,
      licensed,
      used,
      coveredByLicense,
      coveredByCredits,
      creditsApplied: credits,
      onDemand: rest,
      onDemandCost: price ? rest.times(price) : null,
      unitPrice: price,
    });
  }
  const products = input.products.map((p) => results.get(p.id)!);
  // The invoice: priced products used beyond their license.
  const lines = products
    .filter((p) => p.unitPrice && p.used.minus(p.coveredByLicense).isPositive())
    .map((p) => {
      const quantity = p.used.minus(p.coveredByLicense);
      const amount = quantity.times(p.unitPrice!);
      return { id: p.id, quantity, amount, creditsApplied: p.creditsApplied, total: amount.minus(p.creditsApplied) };
    });
  const subtotal = sumQ(lines.map((l) => l.amount));
  const invoiceCredits = sumQ(lines.map((l) => l.creditsApplied));
  return {
    products,
    available,
    remaining: pools,
    creditsApplied: sumQ(products.map((p) => p.creditsApplied)),
    invoice: { lines, subtotal, creditsApplied: invoiceCredits, total: subtotal.minus(invoiceCredits) },
  };
}
