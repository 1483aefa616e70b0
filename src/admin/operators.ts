/**
 * Operators' keys. The API never creates one: the first comes from the command line with direct
 * database access (`usage-gateway operator:create-key`, src/cli/operator.ts); in development the
 * gateway makes a fixed one whose secret is public (DEV_OPERATOR_KEY), like the demo key.
 */
import { hashSecret, newApiKeySecret, parseApiKey, secretMatches, type NewApiKeySecret } from '../auth/api-key-secret.js';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { recordAudit, SYSTEM_ACTOR, type Actor } from './audit.js';
import { checkName } from './names.js';
import type { UserError } from '../schema/user-error.js';

/** The development operator key: public (it is in the source), so it works only in development. */
export const DEV_OPERATOR_KEY = 'ugwop_de7e1000_dev_operator_key_local_only';
const DEV_OPERATOR_KEY_NAME = 'development operator key (public secret)';

function devOperatorSecret(): NewApiKeySecret {
  const parsed = parseApiKey(DEV_OPERATOR_KEY);
  if (!parsed || parsed.kind !== 'operator') throw new Error('invalid DEV_OPERATOR_KEY');
  return { key: DEV_OPERATOR_KEY, prefix: parsed.prefix, secretHash: hashSecret(DEV_OPERATOR_KEY) };
}

export interface CreatedOperatorKey {
  id: string;
  name: string;
  prefix: string;
  /** The whole key: shown once, never stored. */
  secret: string;
  createdAt: Date;
}

/** Creates an operator key and its audit entry (`operatorKey.create`, no realm) in one transaction. */
export async function createOperatorKey(
  prisma: PrismaClient,
  input: { name: string },
  options: { actor?: Actor; secret?: NewApiKeySecret } = {},
): Promise<CreatedOperatorKey | { userErrors: UserError[] }> {
  const checked = checkName(input.name, ['name']);
  if ('error' in checked) return { userErrors: [checked.error] };
  const secret = options.secret ?? newApiKeySecret('operator');
  return prisma.$transaction(async (tx: Prisma.TransactionClient) => {
    const key = await tx.operatorKey.create({ data: { name: checked.name, prefix: secret.prefix, secretHash: secret.secretHash }, select: { id: true, name: true, prefix: true, createdAt: true } });
    await recordAudit(tx, options.actor ?? SYSTEM_ACTOR, { action: 'operatorKey.create', realmId: null, targetType: 'OperatorKey', targetId: key.id, before: null, after: { name: key.name, prefix: key.prefix } });
    return { ...key, secret: secret.key };
  });
}

/**
 * At start-up. Development (with the demo): the public development operator key, created when the
 * database has no operator key yet; answered while it works, so that `npm start` can print it.
 * Production: that key must never work (anyone can read its secret): revoked if it exists.
 */
export async function devOperatorKeyAtStart(prisma: PrismaClient, options: { development: boolean; seedDemo: boolean }): Promise<{ key?: string; revoked?: boolean }> {
  const secret = devOperatorSecret();
  const row = await prisma.operatorKey.findUnique({ where: { prefix: secret.prefix }, select: { id: true, secretHash: true, revokedAt: true } });
  const works = !!row && secretMatches(DEV_OPERATOR_KEY, row.secretHash) && !row.revokedAt;
  if (!(options.development && options.seedDemo)) {
    if (!works) return {};
    await prisma.$transaction(async (tx) => {
      await tx.operatorKey.update({ where: { id: row!.id }, data: { revokedAt: new Date() }, select: { id: true } });
      await recordAudit(tx, SYSTEM_ACTOR, { action: 'operatorKey.revoke', realmId: null, targetType: 'OperatorKey', targetId: row!.id, before: { revokedAt: null }, after: { revokedAt: new Date() } });
    });
    return { revoked: true };
  }
  if (works) return { key: DEV_OPERATOR_KEY };
  if (row || (await prisma.operatorKey.findFirst({ select: { id: true } }))) return {};
  const created = await createOperatorKey(prisma, { name: DEV_OPERATOR_KEY_NAME }, { secret });
  return 'secret' in created ? { key: created.secret } : {};
}
