// Layout ("Components V2") messages on the playground page, as Discord draws them: containers
// with an accent bar, sections with a thumbnail beside their text, texts in the same markdown as
// messages, media galleries and rows of buttons inside. app.js calls
// PlaygroundLayout.render(view, helpers) for a message whose view has a `layout`.
// Safety rule, as in app.js: text only ever goes in through textContent (markdown.js).
"use strict";

window.PlaygroundLayout = (() => {
  function el(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function image(url, className, app) {
    const button = el("button", `layout-image ${className}`);
    button.type = "button";
    button.title = "Click to open full size";
    const img = document.createElement("img");
    if (className === "layout-gallery-item") {
      button.classList.add("image-button"); // a message's files, as app.js shows attachments
      img.className = "attachment-image";
    }
    img.src = url;
    img.alt = "";
    img.decoding = "async";
    button.appendChild(img);
    button.addEventListener("click", () => app.openLightbox({ url, filename: url.split("/").pop() }));
    return button;
  }

  function part(node, view, app) {
    switch (node.type) {
      case "container": {
        const box = el("div", "layout-container");
        if (node.accent) box.style.setProperty("--layout-accent", node.accent);
        else box.classList.add("no-accent");
        for (const child of node.children) box.appendChild(part(child, view, app));
        return box;
      }
      case "section": {
        const box = el("div", "layout-section");
        const texts = el("div", "layout-section-texts");
        for (const child of node.children) texts.appendChild(part(child, view, app));
        box.appendChild(texts);
        for (const accessory of node.accessory) {
          const side = el("div", "layout-accessory");
          side.appendChild(part(accessory, view, app));
          box.appendChild(side);
        }
        return box;
      }
      case "text": {
        const box = el("div", "layout-text");
        box.appendChild(window.renderMarkdown(node.content));
        return box;
      }
      case "thumbnail":
        return node.url ? image(node.url, "layout-thumbnail", app) : el("div", "layout-thumbnail");
      case "gallery": {
        const box = el("div", "layout-gallery");
        if (node.urls.length === 1) box.classList.add("single");
        for (const url of node.urls) box.appendChild(image(url, "layout-gallery-item", app));
        return box;
      }
      case "separator":
        return el("div", node.divider ? "layout-separator divider" : "layout-separator");
      case "row":
        return app.renderComponents({ id: view.id, components: [node.buttons] });
      default:
        return el("div", "layout-unknown");
    }
  }

  function render(view, app) {
    const wrap = el("div", "layout content"); // its text, as a plain message's .content
    for (const node of view.layout) wrap.appendChild(part(node, view, app));
    return wrap;
  }

  return { render };
})();
