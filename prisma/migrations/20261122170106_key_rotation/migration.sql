-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "previousSecretExpiresAt" TIMESTAMPTZ(3),
ADD COLUMN     "previousSecretHash" TEXT;
