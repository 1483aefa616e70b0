import type { PrismaClient } from './generated/prisma/client.js';

/** The authenticated caller: an API key and what it may see. */
export interface Viewer {
  apiKeyId: string;
  realmId: string;
  /** The key's workspace scope: it sees this workspace and its subtree only (null: the whole realm). */
  workspaceId: string | null;
  scopes: string[];
}

export interface Context {
  prisma: PrismaClient;
  viewer: Viewer;
}
