-- AlterTable
ALTER TABLE "UsageEvent" ADD COLUMN     "contentHash" TEXT NOT NULL DEFAULT '',
ADD COLUMN     "dimensionKey" TEXT NOT NULL DEFAULT '';

-- AlterTable
ALTER TABLE "UsageHourly" ADD COLUMN     "latestAt" TIMESTAMPTZ(3),
ADD COLUMN     "revision" INTEGER NOT NULL DEFAULT 1;

-- CreateIndex
CREATE INDEX "UsageHourly_realmId_updatedAt_id_idx" ON "UsageHourly"("realmId", "updatedAt", "id");
