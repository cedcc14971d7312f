// The dashboard's class filter shows the chosen class as soon as it is picked (a plain GET form without JavaScript).
document.querySelectorAll("form.class-filter select").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
  const button = select.form.querySelector("button");
  if (button) button.hidden = true;
});
