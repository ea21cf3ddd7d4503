// Show only the chosen kind's fields (without script, every kind's fields stay visible).
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
})();
