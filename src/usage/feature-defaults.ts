import type { PrismaClient } from '../generated/prisma/client.js';

const arrivalDelayDefaults = new WeakMap<PrismaClient, Promise<number>>();

/**
 * A new feature's arrival delay: the `Feature.arrivalDelaySeconds` column's default, where it is
 * defined (prisma/schema.prisma, applied by the migrations), read from the database once per client.
 */
export function defaultArrivalDelaySeconds(prisma: PrismaClient): Promise<number> {
  let known = arrivalDelayDefaults.get(prisma);
  if (!known) {
    known = prisma
      .$queryRawUnsafe<{ value: string | null }[]>(
        `SELECT column_default AS value FROM information_schema.columns WHERE table_name = 'Feature' AND column_name = 'arrivalDelaySeconds' AND table_schema = current_schema()`,
      )
      .then((rows) => {
        const value = Number.parseInt(rows[0]?.value ?? '', 10);
        if (!Number.isInteger(value)) throw new Error('Feature.arrivalDelaySeconds has no integer default in the database');
        return value;
      });
    known.catch(() => arrivalDelayDefaults.delete(prisma));
    arrivalDelayDefaults.set(prisma, known);
  }
  return known;
}
