// The site picker: the sites this certificate may read (GET /ext/v1/sites).

import { getResults, paths } from "../api.js";
import { linkTo } from "../state.js";
import { el, fill, setCrumbs } from "../ui.js";

export async function render(main) {
  setCrumbs([["Sites", "#/"]]);
  document.title = "Sites · storecast";
  const sites = await getResults(paths.sites());
  fill(main,
    el("h1", {}, "Sites"),
    sites.length === 0
      ? el("p", { class: "muted" }, "This certificate may read no site with anything stored.")
      : el(
          "ul",
          { class: "site-list", id: "sites" },
          sites.map(({ site_id }) =>
            el("li", {}, el("a", { href: linkTo([site_id]), dataset: { site: site_id } }, `Site ${site_id}`)),
          ),
        ),
  );
  return {};
}
