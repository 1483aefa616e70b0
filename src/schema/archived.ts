/** What lists of archivable objects (workspaces, datastreams, projects, apps) share: the `includeArchived` argument and the `archivedAt` field. */

/** Lists leave archived rows out unless asked; `node(id)` and usage reports never do. */
export function liveUnless(includeArchived: boolean | null | undefined): { archivedAt?: null } {
  return includeArchived ? {} : { archivedAt: null };
}

// The field builders' types differ per parent type; these helpers take any of them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFieldBuilder = { arg: { boolean: (options: any) => any }; expose: (name: any, options: any) => any };

export function includeArchivedArg<T extends AnyFieldBuilder>(t: T): ReturnType<T['arg']['boolean']> {
  return t.arg.boolean({ defaultValue: false, description: 'Archived ones too (they are left out by default).' });
}

export function archivedAtField<T extends AnyFieldBuilder>(t: T): ReturnType<T['expose']> {
  return t.expose('archivedAt', {
    type: 'DateTime',
    nullable: true,
    description: 'When it was archived (null: live). Archived objects are left out of lists, keep their usage, and take no new usage.',
  });
}
