-- AlterTable
ALTER TABLE "Alert" ADD COLUMN     "nextDeliveryAt" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "Alert_nextDeliveryAt_idx" ON "Alert"("nextDeliveryAt");
