-- CreateEnum
CREATE TYPE "TrafficStatus" AS ENUM ('OK', 'CLIENT_ERROR', 'SERVER_ERROR', 'RATE_LIMITED');

-- CreateTable
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
);

-- AddForeignKey
ALTER TABLE "ApiTrafficMinute" ADD CONSTRAINT "ApiTrafficMinute_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE CASCADE ON UPDATE CASCADE;
