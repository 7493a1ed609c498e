// The signed-in user, shared by the views (`/api/v1/me`: id, name, organisation, roles, lang).

export const session = { me: null };

/** Whether `userId` is the signed-in user. */
export function isMe(userId) {
  return Boolean(userId) && session.me?.id === userId;
}
