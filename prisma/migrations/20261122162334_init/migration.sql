-- CreateEnum
CREATE TYPE "Tier" AS ENUM ('FREE', 'STARTER', 'PROFESSIONAL', 'ENTERPRISE');

-- CreateEnum
CREATE TYPE "FeatureUnit" AS ENUM ('TRANSACTION', 'GB_MONTH', 'GB', 'ROW', 'REQUEST', 'DYNO_UNIT', 'SPACE', 'CREDIT');

-- CreateEnum
CREATE TYPE "Aggregation" AS ENUM ('SUM', 'COUNT', 'MAX', 'UNIQUE_COUNT', 'LATEST');

-- CreateEnum
CREATE TYPE "CreditKind" AS ENUM ('GENERAL', 'PRIVATE_SPACE', 'SHIELD_SPACE');

-- CreateTable
CREATE TABLE "Realm" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "tier" "Tier" NOT NULL DEFAULT 'FREE',
    "customRateLimit" INTEGER,
    "timeZone" TEXT NOT NULL DEFAULT 'UTC',
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Realm_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Workspace" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "parentId" UUID,
    "name" TEXT NOT NULL,
    "depth" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Workspace_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WorkspaceClosure" (
    "ancestorId" UUID NOT NULL,
    "descendantId" UUID NOT NULL,
    "depth" INTEGER NOT NULL,

    CONSTRAINT "WorkspaceClosure_pkey" PRIMARY KEY ("ancestorId","descendantId")
);

-- CreateTable
CREATE TABLE "Datastream" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Datastream_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Project" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Project_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "App" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "workspaceId" UUID,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "App_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Feature" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "service" TEXT NOT NULL,
    "unit" "FeatureUnit" NOT NULL,
    "aggregation" "Aggregation" NOT NULL,
    "arrivalDelaySeconds" INTEGER NOT NULL DEFAULT 7200,
    "finalizedThrough" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Feature_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "workspaceId" UUID,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "secretHash" TEXT NOT NULL,
    "scopes" TEXT[],
    "tier" "Tier",
    "customRateLimit" INTEGER,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMPTZ(3),
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Contract" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "startsAt" TIMESTAMPTZ(3) NOT NULL,
    "endsAt" TIMESTAMPTZ(3) NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Contract_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "License" (
    "id" UUID NOT NULL,
    "contractId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "quantityPerMonth" DECIMAL(30,9) NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "License_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CreditGrant" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "kind" "CreditKind" NOT NULL,
    "credits" DECIMAL(30,9) NOT NULL,
    "startsAt" TIMESTAMPTZ(3) NOT NULL,
    "endsAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CreditGrant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Price" (
    "id" UUID NOT NULL,
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "unitAmount" DECIMAL(30,12) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "validFrom" TIMESTAMPTZ(3) NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Price_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageEvent" (
    "id" BIGSERIAL NOT NULL,
    "realmId" UUID NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "featureId" UUID NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL,
    "quantity" DECIMAL(38,9) NOT NULL,
    "workspaceId" UUID,
    "datastreamId" UUID,
    "projectId" UUID,
    "appId" UUID,
    "billingTag" TEXT,
    "resource" TEXT,
    "apiKeyId" UUID,
    "uniqueKey" TEXT,
    "receivedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageHourly" (
    "id" BIGSERIAL NOT NULL,
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "dimensionKey" TEXT NOT NULL,
    "workspaceId" UUID,
    "datastreamId" UUID,
    "projectId" UUID,
    "appId" UUID,
    "billingTag" TEXT,
    "resource" TEXT,
    "apiKeyId" UUID,
    "quantity" DECIMAL(38,9) NOT NULL,
    "eventCount" BIGINT NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageHourly_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageUniqueKey" (
    "realmId" UUID NOT NULL,
    "featureId" UUID NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "dimensionKey" TEXT NOT NULL,
    "workspaceId" UUID,
    "datastreamId" UUID,
    "projectId" UUID,
    "appId" UUID,
    "billingTag" TEXT,
    "resource" TEXT,
    "apiKeyId" UUID,
    "key" TEXT NOT NULL,

    CONSTRAINT "UsageUniqueKey_pkey" PRIMARY KEY ("realmId","featureId","hour","dimensionKey","key")
);

-- CreateIndex
CREATE UNIQUE INDEX "Realm_slug_key" ON "Realm"("slug");

-- CreateIndex
CREATE INDEX "Workspace_realmId_name_idx" ON "Workspace"("realmId", "name");

-- CreateIndex
CREATE INDEX "Workspace_parentId_idx" ON "Workspace"("parentId");

-- CreateIndex
CREATE INDEX "WorkspaceClosure_descendantId_ancestorId_idx" ON "WorkspaceClosure"("descendantId", "ancestorId");

-- CreateIndex
CREATE INDEX "Datastream_workspaceId_idx" ON "Datastream"("workspaceId");

-- CreateIndex
CREATE INDEX "Datastream_realmId_name_idx" ON "Datastream"("realmId", "name");

-- CreateIndex
CREATE INDEX "Project_realmId_name_idx" ON "Project"("realmId", "name");

-- CreateIndex
CREATE INDEX "App_projectId_idx" ON "App"("projectId");

-- CreateIndex
CREATE INDEX "App_workspaceId_idx" ON "App"("workspaceId");

-- CreateIndex
CREATE INDEX "App_realmId_name_idx" ON "App"("realmId", "name");

-- CreateIndex
CREATE UNIQUE INDEX "Feature_realmId_key_key" ON "Feature"("realmId", "key");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_prefix_key" ON "ApiKey"("prefix");

-- CreateIndex
CREATE INDEX "ApiKey_realmId_createdAt_idx" ON "ApiKey"("realmId", "createdAt");

-- CreateIndex
CREATE INDEX "ApiKey_workspaceId_idx" ON "ApiKey"("workspaceId");

-- CreateIndex
CREATE INDEX "Contract_realmId_startsAt_idx" ON "Contract"("realmId", "startsAt");

-- CreateIndex
CREATE INDEX "License_featureId_idx" ON "License"("featureId");

-- CreateIndex
CREATE UNIQUE INDEX "License_contractId_featureId_key" ON "License"("contractId", "featureId");

-- CreateIndex
CREATE INDEX "CreditGrant_realmId_startsAt_idx" ON "CreditGrant"("realmId", "startsAt");

-- CreateIndex
CREATE INDEX "Price_realmId_idx" ON "Price"("realmId");

-- CreateIndex
CREATE UNIQUE INDEX "Price_featureId_validFrom_key" ON "Price"("featureId", "validFrom");

-- CreateIndex
CREATE INDEX "UsageEvent_featureId_occurredAt_idx" ON "UsageEvent"("featureId", "occurredAt");

-- CreateIndex
CREATE UNIQUE INDEX "UsageEvent_realmId_idempotencyKey_key" ON "UsageEvent"("realmId", "idempotencyKey");

-- CreateIndex
CREATE INDEX "UsageHourly_realmId_hour_idx" ON "UsageHourly"("realmId", "hour");

-- CreateIndex
CREATE INDEX "UsageHourly_workspaceId_hour_idx" ON "UsageHourly"("workspaceId", "hour");

-- CreateIndex
CREATE INDEX "UsageHourly_datastreamId_hour_idx" ON "UsageHourly"("datastreamId", "hour");

-- CreateIndex
CREATE INDEX "UsageHourly_projectId_hour_idx" ON "UsageHourly"("projectId", "hour");

-- CreateIndex
CREATE INDEX "UsageHourly_appId_hour_idx" ON "UsageHourly"("appId", "hour");

-- CreateIndex
CREATE INDEX "UsageHourly_apiKeyId_hour_idx" ON "UsageHourly"("apiKeyId", "hour");

-- CreateIndex
CREATE UNIQUE INDEX "UsageHourly_realmId_featureId_hour_dimensionKey_key" ON "UsageHourly"("realmId", "featureId", "hour", "dimensionKey");

-- CreateIndex
CREATE INDEX "UsageUniqueKey_featureId_hour_idx" ON "UsageUniqueKey"("featureId", "hour");

-- AddForeignKey
ALTER TABLE "Workspace" ADD CONSTRAINT "Workspace_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Workspace" ADD CONSTRAINT "Workspace_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Workspace"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WorkspaceClosure" ADD CONSTRAINT "WorkspaceClosure_ancestorId_fkey" FOREIGN KEY ("ancestorId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WorkspaceClosure" ADD CONSTRAINT "WorkspaceClosure_descendantId_fkey" FOREIGN KEY ("descendantId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Datastream" ADD CONSTRAINT "Datastream_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Datastream" ADD CONSTRAINT "Datastream_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Project" ADD CONSTRAINT "Project_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "App" ADD CONSTRAINT "App_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "App" ADD CONSTRAINT "App_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "App" ADD CONSTRAINT "App_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Feature" ADD CONSTRAINT "Feature_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Contract" ADD CONSTRAINT "Contract_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "License" ADD CONSTRAINT "License_contractId_fkey" FOREIGN KEY ("contractId") REFERENCES "Contract"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "License" ADD CONSTRAINT "License_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CreditGrant" ADD CONSTRAINT "CreditGrant_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Price" ADD CONSTRAINT "Price_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Price" ADD CONSTRAINT "Price_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageEvent" ADD CONSTRAINT "UsageEvent_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageEvent" ADD CONSTRAINT "UsageEvent_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_datastreamId_fkey" FOREIGN KEY ("datastreamId") REFERENCES "Datastream"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_appId_fkey" FOREIGN KEY ("appId") REFERENCES "App"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageUniqueKey" ADD CONSTRAINT "UsageUniqueKey_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageUniqueKey" ADD CONSTRAINT "UsageUniqueKey_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;
