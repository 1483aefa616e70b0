import { CREDIT_CATEGORIES, type CreditCategory } from './categories.js';
import { dec, floorQuantity, min, ZERO, type Decimal } from './decimal.js';

export interface ProductMonth {
  featureId: string;
  /** Orders products within a category (deterministic credit spending). */
  key: string;
  category: CreditCategory;
  used: Decimal;
  licensed: Decimal;
  /** On-demand price of one unit; null: the product has no price (credits cannot value it). */
  unitPrice: Decimal | null;
  currency: string | null;
}

/** Credits available in the month, by kind (already prorated). */
export interface CreditPools {
  general: Decimal;
  privateSpace: Decimal;
  shieldSpace: Decimal;
}

export interface ProductCoverage extends ProductMonth {
  coveredByLicense: Decimal;
  unusedLicensed: Decimal;
  /** Quantity paid for with credits. */
  coveredByCredits: Decimal;
  /** Credits spent on it: coveredByCredits × unitPrice. */
  creditsApplied: Decimal;
  /** Quantity beyond license and credits (exceeding). */
  onDemand: Decimal;
  /** onDemand × unitPrice; null without a price. */
  onDemandCost: Decimal | null;
  /** The credits taken from each pool, in the order they were taken (adds up to creditsApplied). */
  creditsTaken: { pool: keyof CreditPools; credits: Decimal }[];
}

export interface MonthCoverage {
  products: ProductCoverage[];
  creditsAvailable: CreditPools;
  creditsApplied: Decimal;
  creditsRemaining: CreditPools;
}

const categoryRank = (c: CreditCategory) => CREDIT_CATEGORIES.indexOf(c);

/** The order products draw on credits: by category (see CREDIT_CATEGORIES), then by feature key. */
export function spendingOrder<T extends Pick<ProductMonth, 'category' | 'key'>>(products: readonly T[]): T[] {
  return [...products].sort((a, b) => categoryRank(a.category) - categoryRank(b.category) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * How a month's usage is paid for, per product:
 * 1. the license covers up to the licensed quantity;
 * 2. the rest is paid with credits valued at the product's price (1 credit = 1 unit of money):
 *    private- and shield-space credits pay for their own kind of space first; general add-on
 *    credits then pay, in the order third-party add-ons, data add-ons, private spaces, shield
 *    private spaces (by feature key within a category), until they run out;
 * 3. what is left is on demand, at quantity × price.
 *
 * Credits buy whole nano-units: when a pool runs out mid-product, the quantity it pays for is
 * rounded down to 9 decimals and exactly that quantity × price is taken from the pool, so
 * `coveredByCredits × price = creditsApplied` and `creditsApplied + onDemandCost = (used −
 * coveredByLicense) × price` hold exactly. The pools that could not pay a product in full are
 * spent: what is left in them (less than a nano-unit of that product) stays in `creditsRemaining`
 * and pays for no later product, so no fraction of a credit crosses onto the products after it.
 * A product without a price (or with price 0) takes no credits.
 */
export function coverMonth(products: readonly ProductMonth[], available: CreditPools): MonthCoverage {
  const pools = { ...available };
  const spent = new Set<keyof CreditPools>();
  const ordered = spendingOrder(products);
  const results = new Map<string, ProductCoverage>();
  let creditsApplied = ZERO;

  for (const product of ordered) {
    const used = dec(product.used);
    const licensed = dec(product.licensed);
    const coveredByLicense = min(used, licensed);
    let remaining = used.minus(coveredByLicense);
    let coveredByCredits = ZERO;
    let credits = ZERO;
    const price = product.unitPrice ? dec(product.unitPrice) : null;
    const creditsTaken: ProductCoverage['creditsTaken'] = [];

    // The pools this product may draw on, in order: its own kind of space credits, then general ones.
    // They are priced together, so a product paid from two pools is not rounded twice.
    const usable = (
      [
        ...(product.category === 'PRIVATE_SPACE' ? (['privateSpace'] as const) : []),
        ...(product.category === 'SHIELD_SPACE' ? (['shieldSpace'] as const) : []),
        'general',
      ] as const
    ).filter((pool) => !spent.has(pool));
    const available = usable.reduce((total, pool) => total.plus(pools[pool]), ZERO);
    if (price && price.greaterThan(0) && remaining.greaterThan(0) && available.greaterThan(0)) {
      coveredByCredits = min(remaining, floorQuantity(available.div(price)));
      credits = coveredByCredits.mul(price);
      remaining = remaining.minus(coveredByCredits);
      let owed = credits;
      for (const pool of usable) {
        const taken = min(owed, pools[pool]);
        pools[pool] = pools[pool].minus(taken);
        owed = owed.minus(taken);
        if (taken.greaterThan(0)) creditsTaken.push({ pool, credits: taken });
      }
      if (remaining.greaterThan(0)) for (const pool of usable) spent.add(pool);
    }

    creditsApplied = creditsApplied.plus(credits);
    results.set(product.featureId, {
      ...product,
      used,
      licensed,
      coveredByLicense,
      unusedLicensed: licensed.minus(coveredByLicense),
      coveredByCredits,
      creditsApplied: credits,
      onDemand: remaining,
      onDemandCost: price ? remaining.mul(price) : null,
      creditsTaken,
    });
  }
  return {
    products: products.map((p) => results.get(p.featureId)!),
    creditsAvailable: available,
    creditsApplied,
    creditsRemaining: pools,
  };
}
