import { builder } from '../builder.js';

/** A problem with a mutation's input, GitHub/Shopify style: returned in the payload, not thrown. */
export interface UserError {
  field: string[];
  message: string;
  code: string;
}

export const UserErrorRef = builder.objectRef<UserError>('UserError').implement({
  description: 'A problem with the input of a mutation: which field, what is wrong, and a stable code.',
  fields: (t) => ({
    field: t.exposeStringList('field'),
    message: t.exposeString('message'),
    code: t.exposeString('code'),
  }),
});

export function userError(field: string[], code: string, message: string): UserError {
  return { field, code, message };
}
