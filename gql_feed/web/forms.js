// Form helpers: showing server errors next to the fields they concern, and previewing
// a chosen image before it is uploaded.

const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
const IMAGE_MAX_BYTES = 5 * 1024 * 1024;

// Per form, what stops the listeners that clear a field's message when it changes.
const fieldWatches = new WeakMap();

/** Removes every message a previous submit left on the form. */
export function clearErrors(form) {
  fieldWatches.get(form)?.abort();
  fieldWatches.delete(form);
  const summary = form.querySelector(".form-error");
  if (summary) {
    summary.textContent = "";
    summary.hidden = true;
  }
  for (const note of form.querySelectorAll(".field-error")) note.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}

/**
 * Shows an error on the form. BAD_USER_INPUT errors carry {field: message}: each goes
 * under its input (linked with aria-describedby so screen readers read it with the
 * field), until the field changes; anything else goes in the form's summary, in words
 * (its code in a data-code attribute, for bug reports).
 */
export function showError(form, error) {
  clearErrors(form);
  const fields = (error && error.fields) || {};
  const leftover = [];
  let firstInvalid = null;
  for (const [path, message] of Object.entries(fields)) {
    // The server may name a field by its path ("input.title"): the input is the last part.
    const name = path.split(".").pop();
    const input = form.elements.namedItem(name);
    if (input && input.id) {
      const note = document.createElement("p");
      note.className = "field-error";
      note.id = `${input.id}-error`;
      note.textContent = message;
      input.insertAdjacentElement("afterend", note);
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", note.id);
      clearOnChange(form, input, note);
      firstInvalid = firstInvalid || input;
    } else {
      leftover.push(`${name}: ${message}`);
    }
  }

  const summary = form.querySelector(".form-error");
  const code = error && error.code;
  const hasFields = Object.keys(fields).length > 0;
  const lines = [hasFields ? "Please correct the marked fields." : (error && error.message) || "Something went wrong."];
  lines.push(...leftover);
  if (summary) {
    summary.textContent = lines.join(" ");
    summary.hidden = false;
    // The code is for bug reports, not for reading: kept on the element, not in the text.
    if (code) summary.dataset.code = code;
    else delete summary.dataset.code;
  }
  if (firstInvalid) firstInvalid.focus();
}

/**
 * Once the person changes a marked field, its message has done its job: it goes, and so
 * does the summary when no marked field is left.
 */
function clearOnChange(form, input, note) {
  if (!fieldWatches.has(form)) fieldWatches.set(form, new AbortController());
  const watch = new AbortController();
  fieldWatches.get(form).signal.addEventListener("abort", () => watch.abort());
  const clear = () => {
    watch.abort();
    note.remove();
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    const summary = form.querySelector(".form-error");
    if (summary && !form.querySelector(".field-error")) {
      summary.textContent = "";
      summary.hidden = true;
    }
  };
  input.addEventListener("input", clear, { signal: watch.signal });
  input.addEventListener("change", clear, { signal: watch.signal });
}

/** A message for a file the server would refuse anyway, or null when the file looks fine. */
export function imageProblem(file) {
  if (!file) return null;
  if (!IMAGE_TYPES.includes(file.type)) return "Choose a JPEG, PNG, GIF or WebP image.";
  if (file.size > IMAGE_MAX_BYTES) return "The image must be 5 MB or smaller.";
  return null;
}

/** Shows the chosen file in `img` before upload; returns a function that clears it. */
export function attachPreview(fileInput, img) {
  let objectUrl = null;
  const clear = () => {
    if (objectUrl) URL.revokeObjectURL(objectUrl); // free the file's memory
    objectUrl = null;
    img.removeAttribute("src");
    img.hidden = true;
  };
  // A file that claims to be an image but is not one: show no preview rather than a broken one.
  img.addEventListener("error", () => { img.hidden = true; });
  fileInput.addEventListener("change", () => {
    clear();
    const file = fileInput.files && fileInput.files[0];
    if (!file || imageProblem(file)) return;
    objectUrl = URL.createObjectURL(file);
    img.src = objectUrl;
    img.hidden = false;
  });
  return clear;
}

/** Disables the form's buttons while a request runs, so a double click posts once. */
export async function whileBusy(form, task) {
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute("aria-busy", "true");
  try {
    return await task();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute("aria-busy");
  }
}
