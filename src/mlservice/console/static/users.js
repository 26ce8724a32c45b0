// Users (admins): every account, create one, change a role or password, disable or enable
// it, delete it (disable and delete ask first).

import * as api from "./api.js";
import { clear, confirmDialog, field, h, table } from "./dom.js";

const enc = encodeURIComponent;

export async function render(view) {
  const answer = await api.get("/resource/users");
  if (!view.alive()) return;
  const me = api.session.get()?.username;
  const reload = async () => {
    clear(view.main);
    await render(view);
  };
  const username = h("input", { required: true, autocomplete: "off", testid: "user-new-name" });
  const password = h("input", { type: "password", required: true, autocomplete: "new-password", testid: "user-new-password" });
  const role = h("select", { testid: "user-new-role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"));
  const error = h("p", { class: "form-error", role: "alert", testid: "user-error" });
  const button = h("button", { type: "submit", class: "primary", testid: "user-create" }, "Create");
  const form = h(
    "form",
    { class: "card", testid: "user-form", "aria-label": "Create a user" },
    h("h2", {}, "Create a user"),
    h("div", { class: "fields" }, field("User name", username), field("Password (8 characters or more)", password), field("Role", role)),
    error,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      await api.post("/resource/users", { username: username.value, password: password.value, role: role.value });
      view.flash(`Created ${username.value}.`, "info");
      await reload();
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  const act = async (work, done) => {
    try {
      await work();
      view.flash(done, "info");
      await reload();
    } catch (problem) {
      view.flash(problem.message);
    }
  };
  const controls = (user) => {
    const roleChoice = h("select", { testid: "user-role", "aria-label": "Role of " + user.username }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"));
    roleChoice.value = user.role;
    roleChoice.disabled = user.username === me;
    roleChoice.addEventListener("change", () =>
      act(() => api.patch("/resource/users/" + enc(user.username), { role: roleChoice.value }), `${user.username} is now ${roleChoice.value}; their old tokens no longer work.`),
    );
    const reset = h("button", { type: "button", testid: "user-password" }, "Set password");
    reset.addEventListener("click", async () => {
      const input = h("input", { type: "password", testid: "user-password-input", "aria-label": "New password" });
      const save = h("button", { type: "button", testid: "user-password-save" }, "Save");
      save.addEventListener("click", () =>
        act(() => api.patch("/resource/users/" + enc(user.username), { password: input.value }), `New password for ${user.username}; their old tokens no longer work.`),
      );
      reset.replaceWith(input, save);
      input.focus();
    });
    const toggle = h("button", { type: "button", testid: "user-disable", disabled: user.username === me }, user.disabled ? "Enable" : "Disable");
    toggle.addEventListener("click", async () => {
      if (user.disabled) {
        await act(() => api.patch("/resource/users/" + enc(user.username), { disabled: false }), `${user.username} is enabled again.`);
        return;
      }
      const sure = await confirmDialog(`Disable the account “${user.username}”? Its tokens stop working at once and it cannot sign in until enabled again; what it owns is kept.`, "Disable");
      if (sure) await act(() => api.patch("/resource/users/" + enc(user.username), { disabled: true }), `${user.username} is disabled.`);
    });
    const remove = h("button", { type: "button", class: "danger", testid: "user-delete", disabled: user.username === me }, "Delete");
    remove.addEventListener("click", async () => {
      const sure = await confirmDialog(`Delete the account “${user.username}” with its data sets, models and registered models?`, "Delete");
      if (sure) await act(() => api.del("/resource/users/" + enc(user.username)), `Deleted ${user.username}.`);
    });
    return h("span", { class: "row-actions" }, roleChoice, reset, toggle, remove);
  };
  view.main.append(
    h("h1", {}, "Users"),
    form,
    table(
      [
        { label: "User name", value: (u) => h("span", { testid: "user-name" }, u.username) },
        { label: "Role", value: (u) => u.role },
        { label: "State", value: (u) => h("span", { class: "badge " + (u.disabled ? "failed" : "ready"), testid: "user-state" }, u.disabled ? "disabled" : "active") },
        { label: "Account id", value: (u) => h("code", {}, u.account_id || "—") },
        { label: "", value: controls },
      ],
      answer.users,
      { testid: "users-table", rowTestid: () => "user-row" },
    ),
  );
}
