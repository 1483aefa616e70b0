-- AlterTable
ALTER TABLE "UsageEvent" ADD COLUMN     "voidedAt" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "UsageHourly" ADD COLUMN     "reopenedAt" TIMESTAMPTZ(3);
