// The operations this page uses, one function each, so the rest of the code never
// writes GraphQL text. Every post is fetched with the same fields, so a post from a
// query, a mutation or a live event renders the same way.

import { request } from "./graphql.js";

export const POST_FIELDS = `
  fragment PostFields on Post {
    id
    title
    content
    imageUrl
    createdAt
    updatedAt
    creator { id name }
  }
`;

const USER_FIELDS = "id name status email";

export async function signup({ email, name, password }) {
  const data = await request(
    `mutation Signup($input: SignupInput!) { signup(input: $input) { ${USER_FIELDS} } }`,
    { input: { email, name, password } },
  );
  return data.signup;
}

export async function login(email, password) {
  const data = await request(
    `mutation Login($email: String!, $password: String!) {
      login(email: $email, password: $password) { token expiresAt user { ${USER_FIELDS} } }
    }`,
    { email, password },
  );
  return data.login;
}

export async function me(token) {
  const data = await request(`query Me { me { ${USER_FIELDS} } }`, {}, { token });
  return data.me;
}

export async function updateStatus(token, status) {
  const data = await request(
    `mutation UpdateStatus($status: String!) { updateStatus(status: $status) { ${USER_FIELDS} } }`,
    { status },
    { token },
  );
  return data.updateStatus;
}

export async function fetchPage(token, page, perPage) {
  const data = await request(
    `query Posts($page: Int!, $perPage: Int!) {
      posts(page: $page, perPage: $perPage) { totalPosts page perPage posts { ...PostFields } }
    }
    ${POST_FIELDS}`,
    { page, perPage },
    { token },
  );
  return data.posts;
}

export async function createPost(token, { title, content, image }) {
  const data = await request(
    `mutation CreatePost($input: CreatePostInput!) { createPost(input: $input) { ...PostFields } }
    ${POST_FIELDS}`,
    { input: { title, content, image: null } },
    { token, files: { "variables.input.image": image } },
  );
  return data.createPost;
}

/** image is optional: without one the post keeps its picture and the request is plain JSON. */
export async function updatePost(token, id, { title, content, image = null }) {
  const input = { title, content };
  if (image) input.image = null;
  const data = await request(
    `mutation UpdatePost($id: ID!, $input: UpdatePostInput!) {
      updatePost(id: $id, input: $input) { ...PostFields }
    }
    ${POST_FIELDS}`,
    { id, input },
    { token, files: image ? { "variables.input.image": image } : null },
  );
  return data.updatePost;
}

export async function deletePost(token, id) {
  const data = await request(
    `mutation DeletePost($id: ID!) { deletePost(id: $id) }`,
    { id },
    { token },
  );
  return data.deletePost;
}

/** The live subscription; `after` resumes from the server's event log. */
export const POST_EVENTS_SUBSCRIPTION = `
  subscription PostEvents($after: ID) {
    postEvents(after: $after) { id action occurredAt post { ...PostFields } }
  }
  ${POST_FIELDS}
`;
