-- CreateEnum
CREATE TYPE "QuotaPeriod" AS ENUM ('DAY', 'MONTH');

-- CreateTable
CREATE TABLE "QuotaRule" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "period" "QuotaPeriod" NOT NULL,
    "thresholdQuantity" DECIMAL(30,9),
    "thresholdPercent" DECIMAL(12,4),
    "webhookUrl" TEXT,
    "webhookSecret" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "QuotaRule_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Alert" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "ruleId" UUID NOT NULL,
    "periodStart" TIMESTAMPTZ(3) NOT NULL,
    "periodEnd" TIMESTAMPTZ(3) NOT NULL,
    "quantity" DECIMAL(38,9) NOT NULL,
    "threshold" DECIMAL(38,9) NOT NULL,
    "crossedAt" TIMESTAMPTZ(3) NOT NULL,
    "late" BOOLEAN NOT NULL DEFAULT false,
    "message" TEXT NOT NULL,
    "deliveredAt" TIMESTAMPTZ(3),
    "deliveryAttempts" INTEGER NOT NULL DEFAULT 0,
    "lastDeliveryError" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Alert_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "QuotaRule_realmId_featureId_idx" ON "QuotaRule"("realmId", "featureId");

-- CreateIndex
CREATE INDEX "Alert_realmId_createdAt_id_idx" ON "Alert"("realmId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Alert_ruleId_periodStart_key" ON "Alert"("ruleId", "periodStart");

-- AddForeignKey
ALTER TABLE "QuotaRule" ADD CONSTRAINT "QuotaRule_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "QuotaRule" ADD CONSTRAINT "QuotaRule_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Alert" ADD CONSTRAINT "Alert_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Alert" ADD CONSTRAINT "Alert_ruleId_fkey" FOREIGN KEY ("ruleId") REFERENCES "QuotaRule"("id") ON DELETE CASCADE ON UPDATE CASCADE;
