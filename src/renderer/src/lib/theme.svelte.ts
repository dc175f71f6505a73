// Light or dark: the system's choice unless the user picked one, kept in localStorage. The choice
// is an attribute on <html>, which app.css reads; "system" removes it so the media query decides.
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

export class Theme {
  choice = $state<ThemeChoice>(saved());

  constructor() {
    this.#apply();
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
    const root = document.documentElement;
    if (this.choice === 'system') delete root.dataset['theme'];
    else root.dataset['theme'] = this.choice;
  }
}
