// Show only the chosen kind's fields (without script, every kind's fields stay visible), and of
// the rows of permitted times only those in use, with "Add another time" for the next one.
(function () {
  "use strict";
  const select = document.getElementById("kind");
  if (!select) return;
  function show() {
    document.querySelectorAll("fieldset.kind-fields").forEach((set) => {
      set.hidden = set.dataset.kind !== select.value;
    });
  }
  select.addEventListener("change", show);
  show();

  function filled(row) {
    return Array.from(row.querySelectorAll("input")).some((input) => input.value.trim() !== "");
  }
  document.querySelectorAll("fieldset.kind-fields").forEach((set) => {
    const rows = Array.from(set.querySelectorAll(".window-row"));
    if (rows.length < 2) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add-window";
    button.textContent = "Add another time";
    function update() {
      button.hidden = rows.every((row) => !row.hidden);
    }
    rows.forEach((row, i) => {
      row.hidden = i > 0 && !filled(row);
    });
    button.addEventListener("click", () => {
      const next = rows.find((row) => row.hidden);
      if (!next) return;
      next.hidden = false;
      const first = next.querySelector("input");
      if (first) first.focus();
      update();
    });
    rows[rows.length - 1].after(button);
    update();
  });
})();
