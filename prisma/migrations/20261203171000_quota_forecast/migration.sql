-- CreateEnum
CREATE TYPE "AlertKind" AS ENUM ('ACTUAL', 'FORECAST');

-- AlterTable
ALTER TABLE "Alert" ADD COLUMN     "kind" "AlertKind" NOT NULL DEFAULT 'ACTUAL',
ADD COLUMN     "projectedAt" TIMESTAMPTZ(3),
ADD COLUMN     "projectedQuantity" DECIMAL(38,9);

-- AlterTable
ALTER TABLE "QuotaRule" ADD COLUMN     "forecastCheckedAt" TIMESTAMPTZ(3),
ADD COLUMN     "onForecast" BOOLEAN NOT NULL DEFAULT false;
