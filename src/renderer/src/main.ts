import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { Strata } from './lib/strata.svelte.ts';

const strata = new Strata();
mount(App, { target: document.getElementById('app')!, props: { strata } });
void strata.start();
