// One post on screen: an <article class="post" data-post-id="..."> and its edit form.
// Everything the server sent is set with textContent or attributes, never as HTML,
// so a post cannot inject markup into the page.

import { attachPreview, imageProblem, showError, whileBusy } from "./forms.js";

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

/**
 * Builds the article for `post`. actions: {isOwn(post), save(post, changes, form),
 * remove(post)}; the Edit and Delete buttons exist only on the viewer's own posts.
 */
export function renderPost(post, actions) {
  const article = el("article", { class: "post", "data-post-id": post.id });
  const title = el("h2", { class: "post-title", id: `post-${post.id}-title` });
  article.setAttribute("aria-labelledby", title.id);
  const meta = el("p", { class: "meta" });
  meta.append("by ", el("span", { class: "author" }), " · ", el("time"), el("span", { class: "edited" }));
  const image = el("img", { class: "post-image", decoding: "async" });
  const content = el("p", { class: "content" });
  const buttons = el("div", { class: "actions" });
  article.append(title, meta, image, content, buttons);
  updatePost(article, post, actions);
  return article;
}

/** Shows `post` in an existing article without rebuilding it, so an open edit form survives. */
export function updatePost(article, post, actions) {
  article.post = post;
  article.querySelector("h2").textContent = post.title;
  article.querySelector(".author").textContent = post.creator ? post.creator.name : "someone";
  const time = article.querySelector("time");
  time.dateTime = post.createdAt;
  time.textContent = formatDate(post.createdAt);
  article.querySelector(".edited").textContent = wasEdited(post) ? " (edited)" : "";
  const image = article.querySelector("img.post-image");
  if (image.getAttribute("src") !== post.imageUrl) image.src = post.imageUrl;
  image.alt = post.title;
  article.querySelector("p.content").textContent = post.content;

  const buttons = article.querySelector(".actions");
  const own = actions.isOwn(post);
  if (own && !buttons.childElementCount) {
    const edit = el("button", { type: "button", class: "secondary" }, "Edit");
    edit.addEventListener("click", () => openEditor(article, actions));
    const remove = el("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", () => actions.remove(article.post, remove));
    buttons.append(edit, remove);
  } else if (!own) {
    buttons.replaceChildren();
  }
}

/** The server stamps createdAt and updatedAt separately, a moment apart: allow for that. */
function wasEdited(post) {
  return Date.parse(post.updatedAt) - Date.parse(post.createdAt) > 1000;
}

function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : dateFormat.format(date);
}

/** Replaces the post's buttons with an inline form; Save sends only what changed. */
function openEditor(article, actions) {
  if (article.querySelector("form.edit-post")) return;
  const post = article.post;
  const id = `edit-${post.id}`;
  const form = el("form", { class: "edit-post", novalidate: "" });
  form.innerHTML = `
    <div class="form-error" role="alert" hidden></div>
    <div class="field">
      <label for="${id}-title">Title</label>
      <input id="${id}-title" name="title" type="text" minlength="5" required>
    </div>
    <div class="field">
      <label for="${id}-content">Content</label>
      <textarea id="${id}-content" name="content" rows="4" minlength="5" required></textarea>
    </div>
    <div class="field">
      <label for="${id}-image">New image (optional)</label>
      <input id="${id}-image" name="image" type="file" accept="image/jpeg,image/png,image/gif,image/webp">
      <img class="preview" alt="Preview of the new image" hidden>
    </div>
    <div class="actions">
      <button type="submit">Save</button>
      <button type="button" class="secondary cancel">Cancel</button>
    </div>`;
  // Values are set as properties, not in the template, so they are never parsed as HTML.
  form.elements.title.value = post.title;
  form.elements.content.value = post.content;
  const clearPreview = attachPreview(form.elements.image, form.querySelector("img.preview"));

  const buttons = article.querySelector(":scope > .actions");
  const close = () => {
    clearPreview();
    form.remove();
    buttons.hidden = false;
    article.classList.remove("editing");
    buttons.querySelector("button")?.focus();
  };
  form.querySelector("button.cancel").addEventListener("click", close);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = article.post; // a live update may have arrived since the form opened
    const changes = {};
    const title = form.elements.title.value.trim();
    const content = form.elements.content.value.trim();
    const image = form.elements.image.files[0] || null;
    if (title !== current.title) changes.title = title;
    if (content !== current.content) changes.content = content;
    if (image) {
      const problem = imageProblem(image);
      if (problem) {
        showError(form, { fields: { image: problem } });
        return;
      }
      changes.image = image;
    }
    if (!Object.keys(changes).length) {
      close();
      return;
    }
    try {
      await whileBusy(form, () => actions.save(current, changes));
      close();
    } catch (error) {
      showError(form, error);
    }
  });

  buttons.hidden = true;
  article.classList.add("editing");
  article.append(form);
  form.elements.title.focus();
}
