-- Hand-written: UsageEvent, UsageHourly, UsageUniqueKey and ApiTrafficMinute become RANGE-partitioned
-- tables (PostgreSQL declarative partitioning; the same on PGlite). Every row is kept: each table is
-- renamed, recreated partitioned under its name with the constraints and indexes Prisma expects,
-- given one partition per period holding data plus a DEFAULT partition, filled, and the old table
-- dropped. UsageEvent gains "receivedOn" (the UTC day of receipt: its partition key).
-- Partitions ahead of time and retention are src/db/partitions.ts's job.

-- UsageEventDay: which days of receipt are closed to new events (see insertEvents).
CREATE TABLE "UsageEventDay" (
    "day" DATE NOT NULL,
    "closed" BOOLEAN NOT NULL DEFAULT false,
    "eventsDroppedAt" TIMESTAMPTZ(3),

    CONSTRAINT "UsageEventDay_pkey" PRIMARY KEY ("day")
);

-- The old tables step aside; their constraint and index names are freed for the new ones.
ALTER TABLE "UsageEvent" RENAME TO "UsageEvent_unpartitioned";
ALTER TABLE "UsageEvent_unpartitioned" DROP CONSTRAINT "UsageEvent_pkey";
DROP INDEX "UsageEvent_featureId_occurredAt_idx";
DROP INDEX "UsageEvent_realmId_idempotencyKey_key";

ALTER TABLE "UsageHourly" RENAME TO "UsageHourly_unpartitioned";
ALTER TABLE "UsageHourly_unpartitioned" DROP CONSTRAINT "UsageHourly_pkey";
DROP INDEX "UsageHourly_realmId_hour_idx";
DROP INDEX "UsageHourly_realmId_updatedAt_id_idx";
DROP INDEX "UsageHourly_workspaceId_hour_idx";
DROP INDEX "UsageHourly_datastreamId_hour_idx";
DROP INDEX "UsageHourly_projectId_hour_idx";
DROP INDEX "UsageHourly_appId_hour_idx";
DROP INDEX "UsageHourly_apiKeyId_hour_idx";
DROP INDEX "UsageHourly_realmId_featureId_hour_dimensionKey_key";

ALTER TABLE "UsageUniqueKey" RENAME TO "UsageUniqueKey_unpartitioned";
ALTER TABLE "UsageUniqueKey_unpartitioned" DROP CONSTRAINT "UsageUniqueKey_pkey";
DROP INDEX "UsageUniqueKey_featureId_hour_idx";

ALTER TABLE "ApiTrafficMinute" RENAME TO "ApiTrafficMinute_unpartitioned";
ALTER TABLE "ApiTrafficMinute_unpartitioned" DROP CONSTRAINT "ApiTrafficMinute_pkey";

-- The id sequences carry over (ids stay what they were and keep counting).
CREATE TABLE "UsageEvent" (
    "id" BIGINT NOT NULL DEFAULT nextval('"UsageEvent_id_seq"'),
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
    "dimensionKey" TEXT NOT NULL DEFAULT '',
    "contentHash" TEXT NOT NULL DEFAULT '',
    "receivedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "voidedAt" TIMESTAMPTZ(3),
    "receivedOn" DATE NOT NULL,

    CONSTRAINT "UsageEvent_pkey" PRIMARY KEY ("id", "receivedOn")
) PARTITION BY RANGE ("receivedOn");
ALTER SEQUENCE "UsageEvent_id_seq" OWNED BY "UsageEvent"."id";

CREATE TABLE "UsageHourly" (
    "id" BIGINT NOT NULL DEFAULT nextval('"UsageHourly_id_seq"'),
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
    "latestAt" TIMESTAMPTZ(3),
    "revision" INTEGER NOT NULL DEFAULT 1,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "reopenedAt" TIMESTAMPTZ(3),

    CONSTRAINT "UsageHourly_pkey" PRIMARY KEY ("id", "hour")
) PARTITION BY RANGE ("hour");
ALTER SEQUENCE "UsageHourly_id_seq" OWNED BY "UsageHourly"."id";

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
) PARTITION BY RANGE ("hour");

CREATE TABLE "ApiTrafficMinute" (
    "apiKeyId" UUID NOT NULL,
    "minute" TIMESTAMPTZ(3) NOT NULL,
    "endpoint" TEXT NOT NULL,
    "status" "TrafficStatus" NOT NULL,
    "requests" INTEGER NOT NULL,
    "errors" INTEGER NOT NULL,
    "latencySumMs" DOUBLE PRECISION NOT NULL,
    "latencyMaxMs" DOUBLE PRECISION NOT NULL,
    "latencyHistogram" JSONB NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ApiTrafficMinute_pkey" PRIMARY KEY ("apiKeyId","minute","endpoint","status")
) PARTITION BY RANGE ("minute");

CREATE INDEX "UsageEvent_featureId_occurredAt_idx" ON "UsageEvent"("featureId", "occurredAt");
CREATE UNIQUE INDEX "UsageEvent_realmId_idempotencyKey_receivedOn_key" ON "UsageEvent"("realmId", "idempotencyKey", "receivedOn");
CREATE INDEX "UsageHourly_realmId_hour_idx" ON "UsageHourly"("realmId", "hour");
CREATE INDEX "UsageHourly_realmId_updatedAt_id_idx" ON "UsageHourly"("realmId", "updatedAt", "id");
CREATE INDEX "UsageHourly_workspaceId_hour_idx" ON "UsageHourly"("workspaceId", "hour");
CREATE INDEX "UsageHourly_datastreamId_hour_idx" ON "UsageHourly"("datastreamId", "hour");
CREATE INDEX "UsageHourly_projectId_hour_idx" ON "UsageHourly"("projectId", "hour");
CREATE INDEX "UsageHourly_appId_hour_idx" ON "UsageHourly"("appId", "hour");
CREATE INDEX "UsageHourly_apiKeyId_hour_idx" ON "UsageHourly"("apiKeyId", "hour");
CREATE UNIQUE INDEX "UsageHourly_realmId_featureId_hour_dimensionKey_key" ON "UsageHourly"("realmId", "featureId", "hour", "dimensionKey");
CREATE INDEX "UsageUniqueKey_featureId_hour_idx" ON "UsageUniqueKey"("featureId", "hour");

-- Partitions: a DEFAULT one each (rows outside every period land there and are moved out when their
-- period's partition is made), one per UTC day of receipt for UsageEvent and per UTC month for the
-- others: for every period that holds rows, and around now (receipt days from yesterday to a week
-- ahead; months from 13 back to one ahead, so a year of history imported or seeded right after the
-- migration lands in its own partitions, not in DEFAULT). The gateway keeps them ahead from then on.
CREATE TABLE "UsageEvent_default" PARTITION OF "UsageEvent" DEFAULT;
CREATE TABLE "UsageHourly_default" PARTITION OF "UsageHourly" DEFAULT;
CREATE TABLE "UsageUniqueKey_default" PARTITION OF "UsageUniqueKey" DEFAULT;
CREATE TABLE "ApiTrafficMinute_default" PARTITION OF "ApiTrafficMinute" DEFAULT;

DO $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  period date;
  monthly text;
BEGIN
  FOR period IN
    SELECT DISTINCT ("receivedAt" AT TIME ZONE 'UTC')::date FROM "UsageEvent_unpartitioned"
    UNION SELECT generate_series(today - 1, today + 7, interval '1 day')::date
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF "UsageEvent" FOR VALUES FROM (%L) TO (%L)',
      'UsageEvent_p' || to_char(period, 'YYYY_MM_DD'), period, period + 1);
  END LOOP;
  FOREACH monthly IN ARRAY ARRAY['UsageHourly', 'UsageUniqueKey', 'ApiTrafficMinute'] LOOP
    FOR period IN
      SELECT date_trunc('month', "hour" AT TIME ZONE 'UTC')::date FROM "UsageHourly_unpartitioned" WHERE monthly <> 'ApiTrafficMinute'
      UNION SELECT date_trunc('month', "hour" AT TIME ZONE 'UTC')::date FROM "UsageUniqueKey_unpartitioned" WHERE monthly <> 'ApiTrafficMinute'
      UNION SELECT date_trunc('month', "minute" AT TIME ZONE 'UTC')::date FROM "ApiTrafficMinute_unpartitioned" WHERE monthly = 'ApiTrafficMinute'
      UNION SELECT generate_series(date_trunc('month', today - interval '13 months'), date_trunc('month', today + interval '1 month'), interval '1 month')::date
    LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        monthly || '_p' || to_char(period, 'YYYY_MM'), monthly, period::text || ' 00:00:00+00', (period + interval '1 month')::date::text || ' 00:00:00+00');
    END LOOP;
  END LOOP;
END $$;

INSERT INTO "UsageEvent" ("id", "realmId", "idempotencyKey", "featureId", "occurredAt", "quantity", "workspaceId", "datastreamId",
    "projectId", "appId", "billingTag", "resource", "apiKeyId", "uniqueKey", "dimensionKey", "contentHash", "receivedAt", "voidedAt", "receivedOn")
  SELECT "id", "realmId", "idempotencyKey", "featureId", "occurredAt", "quantity", "workspaceId", "datastreamId",
    "projectId", "appId", "billingTag", "resource", "apiKeyId", "uniqueKey", "dimensionKey", "contentHash", "receivedAt", "voidedAt",
    ("receivedAt" AT TIME ZONE 'UTC')::date
  FROM "UsageEvent_unpartitioned";
-- Every day before today is closed: no ingestion transaction of those days is still running.
INSERT INTO "UsageEventDay" ("day", "closed")
  SELECT DISTINCT "receivedOn", "receivedOn" < (now() AT TIME ZONE 'UTC')::date FROM "UsageEvent";

INSERT INTO "UsageHourly" ("id", "realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", "projectId", "appId",
    "billingTag", "resource", "apiKeyId", "quantity", "eventCount", "latestAt", "revision", "updatedAt", "reopenedAt")
  SELECT "id", "realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", "projectId", "appId",
    "billingTag", "resource", "apiKeyId", "quantity", "eventCount", "latestAt", "revision", "updatedAt", "reopenedAt"
  FROM "UsageHourly_unpartitioned";

INSERT INTO "UsageUniqueKey" ("realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", "projectId", "appId",
    "billingTag", "resource", "apiKeyId", "key")
  SELECT "realmId", "featureId", "hour", "dimensionKey", "workspaceId", "datastreamId", "projectId", "appId",
    "billingTag", "resource", "apiKeyId", "key"
  FROM "UsageUniqueKey_unpartitioned";

INSERT INTO "ApiTrafficMinute" ("apiKeyId", "minute", "endpoint", "status", "requests", "errors", "latencySumMs", "latencyMaxMs",
    "latencyHistogram", "updatedAt")
  SELECT "apiKeyId", "minute", "endpoint", "status", "requests", "errors", "latencySumMs", "latencyMaxMs",
    "latencyHistogram", "updatedAt"
  FROM "ApiTrafficMinute_unpartitioned";

DROP TABLE "UsageEvent_unpartitioned";
DROP TABLE "UsageHourly_unpartitioned";
DROP TABLE "UsageUniqueKey_unpartitioned";
DROP TABLE "ApiTrafficMinute_unpartitioned";

ALTER TABLE "UsageEvent" ADD CONSTRAINT "UsageEvent_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageEvent" ADD CONSTRAINT "UsageEvent_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_datastreamId_fkey" FOREIGN KEY ("datastreamId") REFERENCES "Datastream"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_appId_fkey" FOREIGN KEY ("appId") REFERENCES "App"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageHourly" ADD CONSTRAINT "UsageHourly_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "UsageUniqueKey" ADD CONSTRAINT "UsageUniqueKey_realmId_fkey" FOREIGN KEY ("realmId") REFERENCES "Realm"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UsageUniqueKey" ADD CONSTRAINT "UsageUniqueKey_featureId_fkey" FOREIGN KEY ("featureId") REFERENCES "Feature"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ApiTrafficMinute" ADD CONSTRAINT "ApiTrafficMinute_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE CASCADE ON UPDATE CASCADE;
