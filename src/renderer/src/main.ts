import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { Strata, strataContext } from './lib/strata.svelte.ts';

const strata = new Strata();
mount(App, { target: document.getElementById('app')!, context: strataContext(strata) });
void strata.start();
