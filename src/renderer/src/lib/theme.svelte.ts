// Light or dark: the system's choice unless the user picked one, kept in localStorage. The theme
// in force is an attribute on <html>, which app.css reads; with "system" it follows the system's
// preference as that changes.
export type ThemeChoice = 'system' | 'light' | 'dark';

const storageKey = 'strata.theme';

function saved(): ThemeChoice {
  try {
    const value = localStorage.getItem(storageKey);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system';
  }
}

const prefersDark = (): MediaQueryList => window.matchMedia('(prefers-color-scheme: dark)');

export class Theme {
  choice = $state<ThemeChoice>(saved());

  constructor() {
    this.#apply();
    prefersDark().addEventListener('change', () => this.#apply());
  }

  set(choice: ThemeChoice): void {
    this.choice = choice;
    try {
      if (choice === 'system') localStorage.removeItem(storageKey);
      else localStorage.setItem(storageKey, choice);
    } catch {
      // Private windows may refuse storage: the choice still holds for this page.
    }
    this.#apply();
  }

  #apply(): void {
    document.documentElement.dataset['theme'] = this.choice === 'system' ? (prefersDark().matches ? 'dark' : 'light') : this.choice;
  }
}
