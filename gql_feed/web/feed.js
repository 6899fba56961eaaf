// The feed on screen: one page of posts (newest first), its pager, and the merging of
// live events and mutation results into it. Every change goes through `upsert` or
// `removeById`, keyed by post id, so a post never shows twice however it arrives.

import { renderPost, updatePost } from "./post-view.js";

const REFRESH_DELAY_MS = 250;

export class FeedView {
  /**
   * elements: {list, empty, pageInfo, newer, older}
   * loadPage(page, perPage): resolves to a PostPage.
   * actions: passed to post-view (isOwn, save, remove).
   * onError(error): a failed fetch.
   */
  constructor({ elements, perPage, loadPage, actions, onError }) {
    this.el = elements;
    this.perPage = perPage;
    this.loadPage = loadPage;
    this.actions = actions;
    this.onError = onError;

    this.page = 1;
    this.totalPosts = 0;
    this.loading = null; // the fetch in flight, if any
    this.buffered = []; // events that arrived during that fetch
    this.refreshTimer = null;
    this.generation = 0; // bumped by clear(), so a fetch from before a logout is dropped
    // Deleted posts, id -> createdAt: the author sees its own delete twice (mutation
    // result and event), and a late CREATED or UPDATED must not bring a deleted post
    // back. createdAt tells a newer post that was given a recycled id from the old one.
    this.gone = new Map();

    this.el.newer.addEventListener("click", () => this.show(this.page - 1));
    this.el.older.addEventListener("click", () => this.show(this.page + 1));
  }

  get lastPage() {
    return Math.max(1, Math.ceil(this.totalPosts / this.perPage));
  }

  /** Fetches and shows `page`. Events arriving meanwhile are applied on top afterwards. */
  async show(page = this.page) {
    const generation = this.generation;
    const target = Math.max(1, page);
    this.page = target;
    this.buffered = [];
    this.el.list.setAttribute("aria-busy", "true");
    const fetch = this.loadPage(target, this.perPage);
    this.loading = fetch;
    let result;
    try {
      result = await fetch;
    } catch (error) {
      if (this.loading === fetch) this.loading = null;
      this.el.list.setAttribute("aria-busy", "false");
      this.onError(error);
      return;
    }
    if (this.loading !== fetch || generation !== this.generation) return; // superseded
    this.loading = null;
    this.el.list.setAttribute("aria-busy", "false");

    this.totalPosts = result.totalPosts;
    // A page past the end (the last posts were deleted): show the last page instead.
    if (!result.posts.length && target > 1 && this.totalPosts > 0) {
      this.show(this.lastPage);
      return;
    }
    const posts = result.posts.filter((post) => !this.isGone(post));
    this.el.list.replaceChildren(...posts.map((post) => renderPost(post, this.actions)));
    const missed = this.buffered;
    this.buffered = [];
    missed.forEach((event) => this.applyEvent(event));
    this.renderPager();
  }

  /** Refetches the current page soon; several calls in a burst cost one fetch. */
  refresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.show(this.page), REFRESH_DELAY_MS);
  }

  clear() {
    this.generation += 1;
    clearTimeout(this.refreshTimer);
    this.loading = null;
    this.buffered = [];
    this.gone.clear();
    this.page = 1;
    this.totalPosts = 0;
    this.el.list.replaceChildren();
    this.renderPager();
  }

  /** Re-renders every post's buttons, e.g. once we know who the viewer is. */
  rerender() {
    for (const article of this.articles()) updatePost(article, article.post, this.actions);
  }

  /** A PostEvent from the subscription, live or replayed. */
  applyEvent(event) {
    if (this.loading) {
      this.buffered.push(event);
      return;
    }
    const { action, post } = event;
    if (this.isGone(post)) return;
    if (action === "CREATED") this.added(post);
    else if (action === "UPDATED") this.changed(post);
    else if (action === "DELETED") this.removed(post);
    this.renderPager();
  }

  /**
   * Results of this page's own mutations. They go through the same path as events
   * (the matching event comes before or after them, and is merged by post id).
   */
  ownCreated(post) {
    this.applyEvent({ action: "CREATED", post });
  }

  ownUpdated(post) {
    this.applyEvent({ action: "UPDATED", post });
  }

  ownDeleted(post) {
    this.applyEvent({ action: "DELETED", post });
  }

  added(post) {
    if (this.find(post.id)) {
      this.changed(post);
      return;
    }
    this.totalPosts += 1;
    if (this.page !== 1) {
      // Every later page shifts by one: refetch rather than guess.
      this.refresh();
      return;
    }
    this.el.list.prepend(renderPost(post, this.actions));
    const articles = this.articles();
    // Keep the page at its size: the oldest post moves on to page 2.
    articles.slice(this.perPage).forEach((article) => article.remove());
    this.renderPager();
  }

  /** Replaces a post in place, unless what we show is already newer. */
  changed(post) {
    const article = this.find(post.id);
    if (!article) return;
    const shown = article.post;
    if (shown && Date.parse(shown.updatedAt) > Date.parse(post.updatedAt)) return;
    updatePost(article, post, this.actions);
  }

  removed(post) {
    this.gone.set(post.id, post.createdAt);
    const article = this.find(post.id);
    this.totalPosts = Math.max(0, this.totalPosts - 1);
    if (article) {
      article.remove();
      // Pull the next post up from the following page, or step back from an emptied page.
      const expected = Math.min(this.perPage, this.totalPosts - (this.page - 1) * this.perPage);
      const shown = this.articles().length;
      if (shown < expected || (shown === 0 && this.page > 1)) this.refresh();
    } else if (this.page !== 1) {
      this.refresh(); // it may have been on an earlier page, shifting this one
    }
    this.renderPager();
  }

  renderPager() {
    const count = this.articles().length;
    this.totalPosts = Math.max(this.totalPosts, count);
    this.el.empty.hidden = count > 0 || Boolean(this.loading);
    this.el.pageInfo.textContent = `Page ${this.page} of ${this.lastPage} · ${this.totalPosts} post${this.totalPosts === 1 ? "" : "s"}`;
    this.el.newer.disabled = this.page <= 1;
    this.el.older.disabled = this.page >= this.lastPage;
  }

  isGone(post) {
    if (!this.gone.has(post.id)) return false;
    const deletedCreatedAt = Date.parse(this.gone.get(post.id));
    return !(Date.parse(post.createdAt) > deletedCreatedAt);
  }

  find(id) {
    return this.el.list.querySelector(`article.post[data-post-id="${CSS.escape(String(id))}"]`);
  }

  articles() {
    return [...this.el.list.querySelectorAll(":scope > article.post")];
  }
}
