-- CreateEnum
CREATE TYPE "RollupUnit" AS ENUM ('DAY', 'MONTH');

-- CreateTable
CREATE TABLE "UsageRollup" (
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "timeZone" TEXT NOT NULL,
    "unit" "RollupUnit" NOT NULL,
    "start" TIMESTAMPTZ(3) NOT NULL,
    "end" TIMESTAMPTZ(3) NOT NULL,
    "dimensionKey" TEXT NOT NULL,
    "workspaceId" UUID,
    "datastreamId" UUID,
    "projectId" UUID,
    "appId" UUID,
    "billingTag" TEXT,
    "resource" TEXT,
    "apiKeyId" UUID,
    "quantity" DECIMAL(38,9) NOT NULL,
    "lastHour" TIMESTAMPTZ(3),

    CONSTRAINT "UsageRollup_pkey" PRIMARY KEY ("realmId","timeZone","unit","featureId","start","dimensionKey")
);

-- CreateTable
CREATE TABLE "UsageRollupKey" (
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "timeZone" TEXT NOT NULL,
    "unit" "RollupUnit" NOT NULL,
    "start" TIMESTAMPTZ(3) NOT NULL,
    "dimensionKey" TEXT NOT NULL,
    "workspaceId" UUID,
    "datastreamId" UUID,
    "projectId" UUID,
    "appId" UUID,
    "billingTag" TEXT,
    "resource" TEXT,
    "apiKeyId" UUID,
    "key" TEXT NOT NULL,

    CONSTRAINT "UsageRollupKey_pkey" PRIMARY KEY ("realmId","timeZone","unit","featureId","start","dimensionKey","key")
);

-- CreateTable
CREATE TABLE "UsageRollupState" (
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "timeZone" TEXT NOT NULL,
    "rolledThrough" TIMESTAMPTZ(3) NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageRollupState_pkey" PRIMARY KEY ("realmId","featureId","timeZone")
);

-- AddForeignKey
ALTER TABLE "UsageRollup" ADD CONSTRAINT "UsageRollup_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRollup" ADD CONSTRAINT "UsageRollup_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRollupKey" ADD CONSTRAINT "UsageRollupKey_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRollupKey" ADD CONSTRAINT "UsageRollupKey_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRollupState" ADD CONSTRAINT "UsageRollupState_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRollupState" ADD CONSTRAINT "UsageRollupState_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;
