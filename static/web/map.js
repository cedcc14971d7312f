// A skill map wider than the screen opens scrolled to its centre, where the first skills sit.
(function () {
  "use strict";
  document.querySelectorAll(".graph-box").forEach(function (box) {
    if (box.scrollWidth > box.clientWidth) { box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2; }
  });
})();
